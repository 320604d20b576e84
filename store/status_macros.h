// Early return on a non-ok Status, for store/ sources only.
#ifndef BALLOT_STORE_STATUS_MACROS_H_
#define BALLOT_STORE_STATUS_MACROS_H_

#include "paxos/status.h"

#define STORE_RETURN_IF_ERROR(expr)                           \
  do {                                                        \
    if (::ballot::Status store_s_ = (expr); !store_s_.ok()) { \
      return store_s_;                                        \
    }                                                         \
  } while (0)

#endif  // BALLOT_STORE_STATUS_MACROS_H_
