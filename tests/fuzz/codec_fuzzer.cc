// Fuzz target: net/codec.h's DecodeFrame, the Cap'n Proto decode and validation of every frame
// a peer or a client can send (hello, peer message batches, client requests, client responses).
//
// Input: a frame payload (rounded down to whole words, as FrameDecoder guarantees). Properties:
//   - decoding never crashes, whatever the bytes (Cap'n Proto exceptions become a Status);
//   - whatever decodes is valid: it re-encodes (the encoder applies the same bounds) and
//     decodes again to an equal frame, so what the core receives could have been sent honestly.
#include <glog/logging.h>

#include <cstring>
#include <string>
#include <variant>

#include "net/codec.h"
#include "tests/fuzz/fuzz_target.h"

BALLOT_FUZZ_TARGET(codec) {
  using namespace ballot::net;
  FramePayload payload(size / kFrameWordBytes);
  if (!payload.empty()) std::memcpy(payload.data(), data, payload.size() * kFrameWordBytes);

  ballot::Result<Frame> decoded = DecodeFrame(payload);
  if (!decoded.ok()) {
    CHECK(decoded.status().code() == ballot::StatusCode::kInvalidArgument)
        << decoded.status().ToString();
    return;
  }
  if (const auto* batch = std::get_if<std::vector<ballot::paxos::Message>>(&decoded.value())) {
    CHECK(!batch->empty());
    for (const auto& m : *batch) CHECK(ValidatePeerMessage(m).ok());
  }
  ballot::Result<std::string> encoded = EncodeFrame(decoded.value());
  CHECK(encoded.ok()) << "a decoded frame does not re-encode: " << encoded.status().ToString();
  const std::string& frame = encoded.value();
  CHECK_GT(frame.size(), kFrameHeaderBytes);
  FramePayload again((frame.size() - kFrameHeaderBytes) / kFrameWordBytes);
  CHECK_EQ(again.size() * kFrameWordBytes + kFrameHeaderBytes, frame.size());
  std::memcpy(again.data(), frame.data() + kFrameHeaderBytes, frame.size() - kFrameHeaderBytes);
  ballot::Result<Frame> redecoded = DecodeFrame(again);
  CHECK(redecoded.ok()) << redecoded.status().ToString();
  CHECK(redecoded.value() == decoded.value()) << "decode(encode(decode(x))) != decode(x)";
}
