// Writes the seed corpora of the fuzz targets: valid encodings made by the real encoders, plus a
// few near misses, so that fuzzing starts from deep inside each format rather than from bytes
// that fail the first check. Deterministic (fixed seeds): running it again gives the same files.
//
//   fuzz_make_corpus <dir>      writes <dir>/<target>/seed-NNN for every target
//
// The output is checked in under tests/fuzz/corpus/ (tools/fuzz.sh corpus regenerates it).
#include <glog/logging.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "net/codec.h"
#include "statemachine/applier.h"
#include "statemachine/samples/kv.h"
#include "statemachine/samples/lock.h"
#include "statemachine/samples/sequence.h"
#include "statemachine/session_table.h"
#include "store/record_codec.h"
#include "tests/net/random_messages.h"

namespace ballot::fuzz {
namespace {

namespace fs = std::filesystem;
using net::testing::RandomWire;

// Inputs above libFuzzer's default -max_len are truncated by it anyway.
constexpr size_t kSeedBytesMax = 4096;

class Writer {
 public:
  explicit Writer(fs::path root) : root_(std::move(root)) {}
  void Add(const std::string& target, const std::string& bytes) {
    if (bytes.size() > kSeedBytesMax) return;
    const fs::path dir = root_ / target;
    fs::create_directories(dir);
    char name[32];
    std::snprintf(name, sizeof(name), "seed-%03d", count_[target]++);
    std::ofstream(dir / name, std::ios::binary) << bytes;
  }

 private:
  fs::path root_;
  std::map<std::string, int> count_;
};

std::string Payload(const std::string& frame) { return frame.substr(net::kFrameHeaderBytes); }

void FramesAndCodec(Writer& w) {
  RandomWire rnd(20240611);
  std::vector<std::string> frames;
  while (frames.size() < 24) {
    Result<std::string> f = net::EncodeFrame(rnd.AnyFrame());
    if (f.ok() && f.value().size() <= 1024) frames.push_back(f.value());
  }
  for (const std::string& f : frames) w.Add("codec", Payload(f));
  // Streams of 1-3 whole frames, one cut short, and one with a bad header after a good frame.
  for (int i = 0; i < 8; ++i) {
    std::string stream(1, static_cast<char>(i % 5));
    stream.push_back(static_cast<char>(17 * i + 1));
    for (int k = 0; k <= i % 3; ++k) stream += frames[(i + k) % frames.size()];
    if (i == 6) stream.resize(stream.size() - 3);
    if (i == 7) stream += std::string("\x07\x00\x00\x00", 4);
    w.Add("frame", stream);
  }
}

void Records(Writer& w) {
  RandomWire rnd(7);
  auto add = [&](uint8_t selector, const std::string& bytes) {
    w.Add("record_codec", std::string(1, static_cast<char>(selector)) + bytes);
  };
  for (int i = 0; i < 3; ++i) {
    paxos::Entry e = rnd.Entry();
    for (size_t c = 0; c < e.value.commands.size(); ++c)
      e.value.commands.mutable_at(c).payload.resize(16);
    std::string value, entry;
    store::EncodeValue(e.value, &value);
    store::EncodeEntryPayload(e, &entry);
    add(0, value);
    add(1, entry);
  }
  std::string s;
  store::EncodeIdentity(store::StoreIdentity{store::kStoreFormatVersion, 0x1234, 3}, &s);
  add(2, s);
  s.clear();
  store::EncodeBallot(paxos::Ballot(9, 2), &s);
  add(3, s);
  s.clear();
  store::EncodeSlot(42, &s);
  add(4, s);
  s.clear();
  store::EncodeSnapshotMeta(store::SnapshotMeta{17, 300}, &s);
  add(5, s);
  s.clear();
  store::EncodeSnapshotData(17, "snapshot bytes", &s);
  add(6, s);
  add(7, store::SlotKey(1234567));
  std::string record;
  store::SealRecord(store::RecordKind::kEntry, store::SlotKey(5), "payload", &record);
  add(8, store::SlotKey(5) + record);
  add(9, store::SlotKey(5) + "\x05\x11" + "payload");
}

paxos::Command Cmd(uint64_t client, uint64_t seq, uint64_t acked, std::string payload) {
  paxos::Command c;
  c.client_id = client;
  c.sequence = seq;
  c.acked_sequence = acked;
  c.payload = std::move(payload);
  return c;
}

// A session table with sessions for clients 1..3 (the ids the targets exercise).
SessionTable SomeSessions(int variant) {
  SessionTable table;
  paxos::Slot slot = 1;
  for (uint64_t seq = 1; seq <= 3 + static_cast<uint64_t>(variant); ++seq) {
    for (uint64_t client = 1; client <= 3; ++client) {
      auto a = table.Admit(Cmd(client, seq, variant > 0 ? seq - 1 : 0, ""), slot++);
      if (a.verdict == SessionTable::Verdict::kFresh) {
        table.Record(a.ticket, Outcome{StatusCode::kOk, "r" + std::to_string(seq), ""});
      }
    }
  }
  return table;
}

void Sessions(Writer& w) {
  w.Add("session_table", SessionTable().Serialize());
  for (int v = 0; v < 3; ++v) w.Add("session_table", SomeSessions(v).Serialize());
}

void Applied(Writer& w) {
  for (int v = 0; v < 3; ++v) {
    Applier applier(std::make_unique<samples::KvStore>());
    std::vector<Reply> replies;
    for (uint64_t slot = 1; slot <= 4 + static_cast<uint64_t>(v); ++slot) {
      paxos::Entry e;
      e.slot = slot;
      e.ballot = paxos::Ballot(1, 1);
      e.value.epoch = e.ballot;
      e.value.leader_start = slot == 1;
      for (uint64_t client = 1; client <= 3; ++client) {
        e.value.commands.push_back(
            Cmd(client, slot, v > 0 ? slot - 1 : 0,
                samples::KvStore::EncodePut("k" + std::to_string(client), "v")));
      }
      applier.Apply({e}, &replies);
    }
    w.Add("applier_restore", applier.Snapshot());
  }
}

std::vector<Outcome> Apply(StateMachine& m, uint64_t stamp_ms, std::vector<std::string> payloads) {
  std::vector<AppliedCommand> batch;
  paxos::Slot slot = 1;
  for (const std::string& p : payloads) batch.push_back({slot++, 1, 1, stamp_ms, p});
  std::vector<Outcome> outcomes;
  m.Apply(batch, &outcomes);
  return outcomes;
}

void Samples(Writer& w) {
  using samples::KvStore;
  using samples::LockService;
  using samples::SequenceGenerator;
  SequenceGenerator seq;
  w.Add("sequence_restore", seq.Snapshot());
  Apply(seq, 0, {SequenceGenerator::EncodeNext(10)});
  w.Add("sequence_restore", seq.Snapshot());
  Apply(seq, 0, {SequenceGenerator::EncodeNext(SequenceGenerator::kCountMax)});
  w.Add("sequence_restore", seq.Snapshot());

  KvStore kv;
  w.Add("kv_restore", kv.Snapshot());
  Apply(kv, 0, {KvStore::EncodePut("a", "1")});
  w.Add("kv_restore", kv.Snapshot());
  Apply(kv, 0, {KvStore::EncodePut("b", "2"), KvStore::EncodePut("k", std::string(40, 'x'))});
  w.Add("kv_restore", kv.Snapshot());

  LockService lock;
  w.Add("lock_restore", lock.Snapshot());
  Apply(lock, 1000, {LockService::EncodeAcquire("a", "o1", 5000)});
  w.Add("lock_restore", lock.Snapshot());
  Apply(lock, 9000,
        {LockService::EncodeAcquire("b", "o2", 100), LockService::EncodeAcquire("a", "o3", 50)});
  w.Add("lock_restore", lock.Snapshot());
}

}  // namespace
}  // namespace ballot::fuzz

int main(int argc, char** argv) {
  google::InitGoogleLogging(argv[0]);
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  ballot::fuzz::Writer w{std::filesystem::path(argv[1])};
  ballot::fuzz::FramesAndCodec(w);
  ballot::fuzz::Records(w);
  ballot::fuzz::Sessions(w);
  ballot::fuzz::Applied(w);
  ballot::fuzz::Samples(w);
  return 0;
}
