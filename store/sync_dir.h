// fsync of a directory: LMDB never syncs directory entries, so a store that creates files
// (data.mdb, lock files) syncs their directory itself before trusting them to survive a crash.
#ifndef BALLOT_STORE_SYNC_DIR_H_
#define BALLOT_STORE_SYNC_DIR_H_

#include <string>

#include "paxos/status.h"

namespace ballot::store {

// kIoError (with errno's text) if the directory cannot be opened or synced.
Status SyncDirectory(const std::string& dir);

}  // namespace ballot::store

#endif  // BALLOT_STORE_SYNC_DIR_H_
