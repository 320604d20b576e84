// The sequence-generator sample's client call (statemachine/samples/sequence.h), kept out of
// net/client/client.h so that the client library does not depend on any sample.
#ifndef BALLOT_NET_CLIENT_SEQUENCE_NUMBERS_H_
#define BALLOT_NET_CLIENT_SEQUENCE_NUMBERS_H_

#include <chrono>
#include <cstdint>

#include "net/client/client.h"
#include "statemachine/samples/sequence.h"

namespace ballot {

// Proposes next(count) and decodes the block handed out. The state machine's refusal (count
// outside 1..kCountMax) is returned as its Status; call errors as Client::Propose.
inline Result<samples::SequenceGenerator::Block> NextNumbers(Client& client, uint64_t count,
                                                             std::chrono::milliseconds timeout) {
  Result<Client::ProposeReply> r =
      client.Propose(samples::SequenceGenerator::EncodeNext(count), timeout);
  if (!r.ok()) return r.status();
  const Outcome& outcome = r.value().outcome;
  if (outcome.code != StatusCode::kOk) return Status(outcome.code, outcome.message);
  return samples::SequenceGenerator::DecodeBlock(outcome.data);
}

}  // namespace ballot

#endif  // BALLOT_NET_CLIENT_SEQUENCE_NUMBERS_H_
