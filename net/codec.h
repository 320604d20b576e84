// Converts between the C++ messages (paxos::Message, net/wire.h) and frames in the wire format
// of net/ballot.capnp.
//
// Encoding produces a whole frame, length prefix included, ready to be written to a socket.
// Decoding takes one payload from FrameDecoder and treats it as hostile: Cap'n Proto reads it
// with explicit traversal and nesting limits, every kj::Exception is caught here and becomes a
// kInvalidArgument Status, and the contents are validated (node ids, slot ranges, counts, enum
// values) before anything reaches the core. Nothing in this file throws.
//
// Thread-safe: these are pure functions.
#ifndef BALLOT_NET_CODEC_H_
#define BALLOT_NET_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "net/frame.h"
#include "net/wire.h"
#include "paxos/message.h"
#include "paxos/status.h"

namespace ballot::net {

// Bounds on decoded contents, checked on decode and on encode (so we never send what a peer
// would reject). The frame size bounds everything too; these reject absurd shapes early.
inline constexpr size_t kPeerMessagesPerFrameMax = size_t{1} << 16;
inline constexpr size_t kEntriesPerMessageMax = size_t{1} << 16;
inline constexpr size_t kCommandsPerValueMax = size_t{1} << 16;
inline constexpr size_t kSlotsPerMessageMax = size_t{1} << 16;
inline constexpr size_t kTextBytesMax = size_t{64} << 10;  // ClientResponse message, role
// Slots (and commit indexes) above this are rejected: no real log gets there, and it keeps
// `slot + 1` arithmetic in the core far from overflow.
inline constexpr uint64_t kSlotMax = uint64_t{1} << 62;
// Cap'n Proto nesting limit: our deepest path (Frame > peer list > message > entries > entry >
// value > commands > command > payload) is under 10 levels.
inline constexpr int kNestingLimit = 16;

// Each returns the complete frame (4-byte length prefix + payload), or kInvalidArgument if the
// contents exceed a bound above or the frame would exceed kFrameBytesMax.
Result<std::string> EncodeHello(const Hello& hello);
// One frame carrying every message in `messages` (at least one), in order.
Result<std::string> EncodePeerBatch(std::span<const paxos::Message> messages);
Result<std::string> EncodeClientRequest(const ClientRequest& request);
Result<std::string> EncodeClientResponse(const ClientResponse& response);
Result<std::string> EncodeFrame(const Frame& frame);

// An upper bound on the bytes `message` adds to a peer frame; the sum over a batch plus
// kPeerFrameOverheadBytes bounds the frame. Lets a sender split a burst into frames that fit.
size_t PeerMessageBytesBound(const paxos::Message& message);
inline constexpr size_t kPeerFrameOverheadBytes = 64;

// Decodes one frame payload. kInvalidArgument, with a message saying what was wrong, if the bytes
// are not a well-formed Frame or its contents fail validation.
Result<Frame> DecodeFrame(const FramePayload& payload);

// Checks the contents of a message the way DecodeFrame does (exposed for senders and tests).
Status ValidatePeerMessage(const paxos::Message& message);

}  // namespace ballot::net

#endif  // BALLOT_NET_CODEC_H_
