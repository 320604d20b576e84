// The wire codec on its own: encode and decode of a peer frame carrying Accepts, the message
// that carries every command from the leader to the followers.
//
// A frame holds `entries` slots, each one 64 B command, spread over `msgs` Accept messages:
//   msgs = 1        one Accept with every entry (how the leader batches slots, up to
//                   Options::accept_entries_max = 64 per message);
//   msgs = entries  a peer batch of single-entry Accepts (how a burst of separate messages to
//                   one peer is framed).
// Encode: EncodePeerBatch (validation + Cap'n Proto build + length prefix).
// Decode: FrameDecoder::Feed of the whole frame (one decoder, as one connection keeps) and
// DecodeFrame (Cap'n Proto read with limits + validation + conversion to paxos::Message).
//
// Reports bytes/s (frame bytes, prefix included), items/s (entries), messages/s and frames/s.
#include <benchmark/benchmark.h>
#include <glog/logging.h>

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "net/codec.h"
#include "net/frame.h"
#include "net/wire.h"
#include "paxos/message.h"
#include "paxos/types.h"

namespace ballot::net {
namespace {

constexpr size_t kCommandBytes = 64;
constexpr paxos::Slot kFirstSlot = 1000000;  // realistic multi-byte slot numbers

// `entries` entries of one 64 B command each, spread evenly over `msgs` Accept messages.
std::vector<paxos::Message> MakeAccepts(size_t entries, size_t msgs) {
  CHECK_GE(msgs, 1u);
  CHECK_EQ(entries % msgs, 0u) << "entries must split evenly over messages";
  const paxos::Ballot ballot(7, 1);
  std::vector<paxos::Message> out(msgs);
  paxos::Slot slot = kFirstSlot;
  for (paxos::Message& m : out) {
    m.type = paxos::MessageType::kAccept;
    m.from = 1;
    m.to = 2;
    m.ballot = ballot;
    m.commit = kFirstSlot;
    for (size_t i = 0; i < entries / msgs; ++i) {
      paxos::Entry e;
      e.slot = slot++;
      e.value.epoch = ballot;
      paxos::Command c;
      c.client_id = 0x1234567890ull;
      c.sequence = e.slot;
      c.acked_sequence = e.slot - 1;
      c.stamp_ms = 1700000000000ull;
      c.payload.assign(kCommandBytes, 'c');
      e.value.commands.push_back(std::move(c));
      m.entries.push_back(std::move(e));
    }
  }
  return out;
}

void Report(benchmark::State& state, size_t entries, size_t msgs, size_t frame_bytes) {
  const auto frames = static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * frame_bytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * entries));
  state.counters["messages/s"] =
      benchmark::Counter(frames * static_cast<double>(msgs), benchmark::Counter::kIsRate);
  state.counters["frames/s"] = benchmark::Counter(frames, benchmark::Counter::kIsRate);
  state.counters["frame_bytes"] = static_cast<double>(frame_bytes);
  state.SetLabel(std::to_string(entries) + " x " + std::to_string(kCommandBytes) + " B in " +
                 std::to_string(msgs) + " Accept" + (msgs == 1 ? "" : "s"));
}

void BM_EncodeAccepts(benchmark::State& state) {
  const auto entries = static_cast<size_t>(state.range(0));
  const auto msgs = static_cast<size_t>(state.range(1));
  const std::vector<paxos::Message> accepts = MakeAccepts(entries, msgs);
  size_t frame_bytes = 0;
  for (auto _ : state) {
    Result<std::string> frame = EncodePeerBatch(std::span<const paxos::Message>(accepts));
    CHECK(frame.ok()) << frame.status().ToString();
    frame_bytes = frame.value().size();
    benchmark::DoNotOptimize(frame.value().data());
  }
  Report(state, entries, msgs, frame_bytes);
}

void BM_DecodeAccepts(benchmark::State& state) {
  const auto entries = static_cast<size_t>(state.range(0));
  const auto msgs = static_cast<size_t>(state.range(1));
  const std::vector<paxos::Message> accepts = MakeAccepts(entries, msgs);
  Result<std::string> encoded = EncodePeerBatch(std::span<const paxos::Message>(accepts));
  CHECK(encoded.ok()) << encoded.status().ToString();
  const std::string& frame = encoded.value();
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(frame.data()),
                                       frame.size());

  // Checked once, outside the timed loop: the round trip gives back what went in.
  {
    FrameDecoder decoder;
    std::vector<FramePayload> payloads;
    CHECK(decoder.Feed(bytes, &payloads).ok());
    CHECK_EQ(payloads.size(), 1u);
    Result<Frame> decoded = DecodeFrame(payloads[0]);
    CHECK(decoded.ok()) << decoded.status().ToString();
    const auto* peer = std::get_if<std::vector<paxos::Message>>(&decoded.value());
    CHECK(peer != nullptr && *peer == accepts) << "round trip changed the messages";
  }

  FrameDecoder decoder;
  std::vector<FramePayload> payloads;
  payloads.reserve(1);
  for (auto _ : state) {
    payloads.clear();
    const Status fed = decoder.Feed(bytes, &payloads);
    CHECK(fed.ok() && payloads.size() == 1) << fed.ToString();
    Result<Frame> decoded = DecodeFrame(payloads[0]);
    CHECK(decoded.ok()) << decoded.status().ToString();
    const auto* peer = std::get_if<std::vector<paxos::Message>>(&decoded.value());
    CHECK(peer != nullptr && peer->size() == msgs);
    benchmark::DoNotOptimize(peer->data());
  }
  Report(state, entries, msgs, frame.size());
}

// {entries, messages}: one Accept carrying every entry, and a batch of one-entry Accepts.
void Shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"entries", "msgs"});
  for (int64_t entries : {1, 16, 256}) b->Args({entries, 1});
  for (int64_t entries : {16, 256}) b->Args({entries, entries});
}

BENCHMARK(BM_EncodeAccepts)->Apply(Shapes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DecodeAccepts)->Apply(Shapes)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace ballot::net

int main(int argc, char** argv) {
  FLAGS_minloglevel = google::GLOG_WARNING;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
