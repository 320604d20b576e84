#include "statemachine/samples/kv.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "statemachine/applier.h"
#include "statemachine/byte_codec.h"

namespace ballot::samples {
namespace {

Outcome Execute(KvStore* kv, std::string_view payload) {
  const AppliedCommand command{
      .slot = 1, .epoch = 0, .client_id = 1, .stamp_ms = 0, .payload = payload};
  std::vector<Outcome> outcomes;
  kv->Apply({&command, 1}, &outcomes);
  EXPECT_EQ(outcomes.size(), 1u);
  return outcomes.empty() ? Outcome{} : outcomes[0];
}

// nullopt if absent; "<error>" if the query itself failed.
std::optional<std::string> Get(const KvStore& kv, std::string_view key) {
  Outcome outcome = kv.Query(KvStore::EncodeGet(key));
  if (outcome.code != StatusCode::kOk) return "<error>";
  Result<std::optional<std::string>> value = KvStore::DecodeGet(outcome.data);
  if (!value.ok()) return "<error>";
  return value.value();
}

TEST(KvStoreTest, PutGetDelete) {
  KvStore kv;
  EXPECT_EQ(Get(kv, "a"), std::nullopt);
  EXPECT_EQ(Execute(&kv, KvStore::EncodePut("a", "1")).code, StatusCode::kOk);
  EXPECT_EQ(Execute(&kv, KvStore::EncodePut("b", "")).code, StatusCode::kOk);
  EXPECT_EQ(Get(kv, "a"), "1");
  EXPECT_EQ(Get(kv, "b"), "") << "an empty value is a value, not absence";
  EXPECT_EQ(Execute(&kv, KvStore::EncodePut("a", "2")).code, StatusCode::kOk);
  EXPECT_EQ(Get(kv, "a"), "2");
  EXPECT_EQ(kv.size(), 2u);
  EXPECT_EQ(Execute(&kv, KvStore::EncodeDelete("a")).code, StatusCode::kOk);
  EXPECT_EQ(Get(kv, "a"), std::nullopt);
  EXPECT_EQ(Execute(&kv, KvStore::EncodeDelete("a")).code, StatusCode::kOk);
  EXPECT_EQ(kv.size(), 1u);
}

TEST(KvStoreTest, BinaryKeysAndValuesSurvive) {
  KvStore kv;
  const std::string key("k\0\xff", 3);
  const std::string value("\0\0v\x80", 4);
  ASSERT_EQ(Execute(&kv, KvStore::EncodePut(key, value)).code, StatusCode::kOk);
  EXPECT_EQ(Get(kv, key), value);
  EXPECT_EQ(Get(kv, "k"), std::nullopt);
}

TEST(KvStoreTest, CompareAndSetOnAValue) {
  KvStore kv;
  ASSERT_EQ(Execute(&kv, KvStore::EncodePut("k", "old")).code, StatusCode::kOk);
  Outcome wrong = Execute(&kv, KvStore::EncodeCompareAndSet("k", "other", "new"));
  EXPECT_EQ(wrong.code, StatusCode::kAborted);
  EXPECT_FALSE(wrong.message.empty());
  EXPECT_EQ(Get(kv, "k"), "old");
  EXPECT_EQ(Execute(&kv, KvStore::EncodeCompareAndSet("k", "old", "new")).code, StatusCode::kOk);
  EXPECT_EQ(Get(kv, "k"), "new");
  // Expecting a value where there is none fails too.
  EXPECT_EQ(Execute(&kv, KvStore::EncodeCompareAndSet("missing", "", "x")).code,
            StatusCode::kAborted);
  EXPECT_EQ(Get(kv, "missing"), std::nullopt);
}

TEST(KvStoreTest, CompareAndSetExpectingAbsence) {
  KvStore kv;
  EXPECT_EQ(Execute(&kv, KvStore::EncodeCompareAndSet("lock", std::nullopt, "owner-1")).code,
            StatusCode::kOk);
  Outcome second = Execute(&kv, KvStore::EncodeCompareAndSet("lock", std::nullopt, "owner-2"));
  EXPECT_EQ(second.code, StatusCode::kAborted);
  EXPECT_EQ(Get(kv, "lock"), "owner-1");
  // "Expected absent" and "expected empty" are different expectations.
  ASSERT_EQ(Execute(&kv, KvStore::EncodePut("empty", "")).code, StatusCode::kOk);
  EXPECT_EQ(Execute(&kv, KvStore::EncodeCompareAndSet("empty", std::nullopt, "x")).code,
            StatusCode::kAborted);
  EXPECT_EQ(Execute(&kv, KvStore::EncodeCompareAndSet("empty", "", "x")).code, StatusCode::kOk);
  EXPECT_EQ(Get(kv, "empty"), "x");
}

TEST(KvStoreTest, SizeLimitsAreEnforcedWithoutChangingState) {
  KvStore kv(KvStore::Limits{.key_bytes_max = 4, .value_bytes_max = 8, .keys_max = 2});
  EXPECT_EQ(Execute(&kv, KvStore::EncodePut("abcd", "12345678")).code, StatusCode::kOk);
  EXPECT_EQ(Execute(&kv, KvStore::EncodePut("abcde", "1")).code, StatusCode::kInvalidArgument);
  EXPECT_EQ(Execute(&kv, KvStore::EncodePut("abcd", "123456789")).code,
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Execute(&kv, KvStore::EncodeCompareAndSet("abcd", "12345678", "123456789")).code,
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Get(kv, "abcd"), "12345678");
  EXPECT_EQ(Execute(&kv, KvStore::EncodePut("b", "2")).code, StatusCode::kOk);
  // Full: a new key is refused by the rules, an existing key may still change.
  Outcome full = Execute(&kv, KvStore::EncodePut("c", "3"));
  EXPECT_EQ(full.code, StatusCode::kAborted);
  EXPECT_EQ(Get(kv, "c"), std::nullopt);
  EXPECT_EQ(Execute(&kv, KvStore::EncodeCompareAndSet("c", std::nullopt, "3")).code,
            StatusCode::kAborted);
  EXPECT_EQ(Execute(&kv, KvStore::EncodePut("b", "22")).code, StatusCode::kOk);
  EXPECT_EQ(kv.size(), 2u);
}

TEST(KvStoreTest, MalformedPayloadsAreInvalidAndChangeNothing) {
  KvStore kv;
  ASSERT_EQ(Execute(&kv, KvStore::EncodePut("k", "v")).code, StatusCode::kOk);
  const std::string before = kv.Snapshot();
  const std::string put = KvStore::EncodePut("k", "w");
  const std::string cas = KvStore::EncodeCompareAndSet("k", "v", "w");
  std::string bad_flag = cas;
  bad_flag[1 + 4 + 1] = 2;  // op, key length, key, then the has-expected flag
  const std::vector<std::string> bad = {"",
                                        put.substr(0, put.size() - 1),
                                        put + "x",
                                        cas.substr(0, 7),
                                        bad_flag,
                                        std::string(1, '\x09') + put.substr(1),
                                        KvStore::EncodeGet("k")};  // a query is not a command
  for (const std::string& payload : bad) {
    EXPECT_EQ(Execute(&kv, payload).code, StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(kv.Snapshot(), before);
  EXPECT_EQ(kv.Query(put).code, StatusCode::kInvalidArgument);  // a command is not a query
  EXPECT_EQ(kv.Query("").code, StatusCode::kInvalidArgument);
  EXPECT_FALSE(KvStore::DecodeGet("").ok());
  EXPECT_FALSE(KvStore::DecodeGet("\x02").ok());
}

// Random operations against a std::map model; two stores fed the same commands stay identical.
TEST(KvStoreTest, MatchesAModelAndIsDeterministic) {
  std::mt19937_64 rng(0xC0FFEE);
  KvStore a;
  KvStore b;
  std::map<std::string, std::string> model;
  for (int i = 0; i < 5000; i++) {
    const std::string key = "k" + std::to_string(rng() % 20);
    const std::string value = "v" + std::to_string(rng() % 5);
    std::string payload;
    StatusCode expected_code = StatusCode::kOk;
    auto it = model.find(key);
    switch (rng() % 4) {
      case 0:
        payload = KvStore::EncodePut(key, value);
        model[key] = value;
        break;
      case 1:
        payload = KvStore::EncodeDelete(key);
        model.erase(key);
        break;
      case 2: {
        const std::string expected = "v" + std::to_string(rng() % 5);
        payload = KvStore::EncodeCompareAndSet(key, expected, value);
        if (it != model.end() && it->second == expected) {
          it->second = value;
        } else {
          expected_code = StatusCode::kAborted;
        }
        break;
      }
      default:
        payload = KvStore::EncodeCompareAndSet(key, std::nullopt, value);
        if (it == model.end()) {
          model[key] = value;
        } else {
          expected_code = StatusCode::kAborted;
        }
    }
    ASSERT_EQ(Execute(&a, payload).code, expected_code) << i;
    ASSERT_EQ(Execute(&b, payload).code, expected_code) << i;
  }
  for (int k = 0; k < 20; k++) {
    const std::string key = "k" + std::to_string(k);
    auto it = model.find(key);
    EXPECT_EQ(Get(a, key), it == model.end() ? std::nullopt : std::optional(it->second));
  }
  EXPECT_EQ(a.size(), model.size());
  EXPECT_EQ(a.Snapshot(), b.Snapshot());
}

TEST(KvStoreTest, SnapshotRoundTripAndGarbageRejected) {
  KvStore kv;
  for (int i = 0; i < 50; i++) {
    ASSERT_EQ(Execute(&kv, KvStore::EncodePut("key" + std::to_string(i), std::string(i, 'x'))).code,
              StatusCode::kOk);
  }
  const std::string good = kv.Snapshot();
  KvStore copy;
  ASSERT_TRUE(copy.Restore(good).ok());
  EXPECT_EQ(copy.Snapshot(), good);
  EXPECT_EQ(Get(copy, "key7"), "xxxxxxx");

  KvStore target;
  ASSERT_EQ(Execute(&target, KvStore::EncodePut("mine", "1")).code, StatusCode::kOk);
  const std::string before = target.Snapshot();
  std::vector<std::string> bad = {"", good + "x", std::string("\x02") + good.substr(1)};
  for (size_t n = 0; n < good.size(); n += 11) bad.push_back(good.substr(0, n));
  // Two entries out of order.
  ByteWriter unsorted;
  unsorted.PutU8(1);
  unsorted.PutU64(2);
  for (const char* key : {"b", "a"}) {
    unsorted.PutBytes(key);
    unsorted.PutBytes("v");
  }
  bad.push_back(unsorted.Release());
  for (const std::string& input : bad) {
    EXPECT_EQ(target.Restore(input).code(), StatusCode::kCorruption) << input.size();
    EXPECT_EQ(target.Snapshot(), before);
  }
  // Valid bytes that exceed this store's limits are rejected too.
  KvStore small(KvStore::Limits{.key_bytes_max = 1024, .value_bytes_max = 10, .keys_max = 100});
  EXPECT_FALSE(small.Restore(good).ok());
  KvStore few(KvStore::Limits{.key_bytes_max = 1024, .value_bytes_max = 100, .keys_max = 49});
  EXPECT_FALSE(few.Restore(good).ok());
}

// The README's walk-through in miniature: a lock built on compare_and_set, retried through the
// Applier, is taken once and the retry sees the original success.
TEST(KvStoreTest, RetriedCompareAndSetThroughTheApplierKeepsItsFirstAnswer) {
  Applier applier(std::make_unique<KvStore>());
  paxos::Command take;
  take.client_id = 1;
  take.sequence = 1;
  take.payload = KvStore::EncodeCompareAndSet("lock", std::nullopt, "client-1");
  std::vector<Reply> replies;
  paxos::Entry e1{
      .slot = 1, .ballot = {}, .value = {.epoch = {}, .leader_start = false, .commands = {take}}};
  paxos::Entry e2{
      .slot = 2, .ballot = {}, .value = {.epoch = {}, .leader_start = false, .commands = {take}}};
  applier.Apply({e1, e2}, &replies);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].outcome.code, StatusCode::kOk);
  // Applied again, the compare_and_set would fail; answered from the session table, it succeeds.
  EXPECT_EQ(replies[1].outcome.code, StatusCode::kOk);
  EXPECT_TRUE(replies[1].duplicate);
  Result<std::optional<std::string>> holder =
      KvStore::DecodeGet(applier.Query(KvStore::EncodeGet("lock")).data);
  ASSERT_TRUE(holder.ok());
  EXPECT_EQ(holder.value(), "client-1");
}

// ---- Snapshots taken while serving ----

// A random command over keys k0..k(keys-1): puts (new and existing keys), deletes and
// compare_and_sets that succeed and fail, values of varying length.
std::string RandomCommand(std::mt19937_64* rng, int keys) {
  const std::string key = "k" + std::to_string((*rng)() % keys);
  const std::string value = "v" + std::to_string((*rng)() % 7) + std::string((*rng)() % 40, 'x');
  switch ((*rng)() % 5) {
    case 0:
    case 1:
      return KvStore::EncodePut(key, value);
    case 2:
      return KvStore::EncodeDelete(key);
    case 3:
      return KvStore::EncodeCompareAndSet(key, std::nullopt, value);
    default:
      return KvStore::EncodeCompareAndSet(key, "v" + std::to_string((*rng)() % 7), value);
  }
}

// Applies `count` random commands to every store given.
void ApplyRandom(std::mt19937_64* rng, int keys, int count, std::vector<KvStore*> stores) {
  for (int i = 0; i < count; i++) {
    const std::string payload = RandomCommand(rng, keys);
    for (KvStore* kv : stores) Execute(kv, payload);
  }
}

// Hands the turn back and forth: each Write lets the main thread apply a batch before the
// writer goes on, so the writer and Apply interleave at every chunk, the same way every run.
class TurnTakingWriter final : public SnapshotWriter {
 public:
  Status Write(std::string_view bytes) override {
    data_.append(bytes);
    std::unique_lock<std::mutex> lock(mu_);
    writer_turn_ = false;
    cv_.notify_all();
    cv_.wait(lock, [&] { return writer_turn_; });
    return Status::Ok();
  }
  // Main thread: waits until the writer has written something more or finished.
  void WaitForMainTurn() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !writer_turn_ || writer_done_; });
  }
  void GiveTurnToWriter() {
    std::lock_guard<std::mutex> lock(mu_);
    writer_turn_ = true;
    cv_.notify_all();
  }
  void SetDone() {
    std::lock_guard<std::mutex> lock(mu_);
    writer_done_ = true;
    cv_.notify_all();
  }
  bool done() {
    std::lock_guard<std::mutex> lock(mu_);
    return writer_done_;
  }
  const std::string& data() const { return data_; }  // after the writer thread is joined

 private:
  std::string data_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool writer_turn_ = true;
  bool writer_done_ = false;
};

TEST(KvSnapshotViewTest, AViewWrittenWhileApplyingIsTheStateAtTheView) {
  constexpr int kKeys = 6000;  // several mutex holds' worth of keys
  constexpr int kCommandsPerTurn = 400;
  std::mt19937_64 rng(2024);
  KvStore live;
  KvStore at_view;  // applies only the commands before the view
  ApplyRandom(&rng, kKeys, 20000, {&live, &at_view});
  ASSERT_GT(live.size(), size_t{256 * 4});

  std::unique_ptr<SnapshotView> view = live.TakeSnapshotView();
  ASSERT_TRUE(live.TEST_streaming_view_active());
  TurnTakingWriter writer;
  Status written;
  std::thread thread([&] {
    written = view->WriteTo(&writer);
    writer.SetDone();
  });
  KvStore model;  // applies everything, to check the live store too
  ASSERT_TRUE(model.Restore(at_view.Snapshot()).ok());
  int turns = 0;
  for (writer.WaitForMainTurn(); !writer.done(); writer.WaitForMainTurn()) {
    ApplyRandom(&rng, kKeys, kCommandsPerTurn, {&live, &model});
    turns++;
    writer.GiveTurnToWriter();
  }
  thread.join();
  ASSERT_TRUE(written.ok()) << written.ToString();
  EXPECT_GE(turns, 3) << "the writer and Apply should have interleaved";
  EXPECT_FALSE(live.TEST_streaming_view_active());

  // Byte for byte what a blocking snapshot of the state at the view gives.
  EXPECT_TRUE(writer.data() == at_view.Snapshot());
  EXPECT_TRUE(live.Snapshot() == model.Snapshot()) << "Apply went on correctly meanwhile";
  KvStore restored;
  StringSnapshotReader reader(writer.data());
  ASSERT_TRUE(restored.RestoreFrom(&reader).ok());
  EXPECT_TRUE(restored.Snapshot() == at_view.Snapshot());
}

// The same without turn taking: the writer thread and Apply race freely (run this one under
// -fsanitize=thread to check the locking).
TEST(KvSnapshotViewTest, AViewWrittenByAFreeRunningThreadIsTheStateAtTheView) {
  std::mt19937_64 rng(7);
  KvStore live;
  KvStore at_view;
  ApplyRandom(&rng, 3000, 8000, {&live, &at_view});
  for (int round = 0; round < 3; round++) {
    std::unique_ptr<SnapshotView> view = live.TakeSnapshotView();
    StringSnapshotWriter writer;
    std::thread thread([&] { ASSERT_TRUE(view->WriteTo(&writer).ok()); });
    ApplyRandom(&rng, 3000, 5000, {&live});
    thread.join();
    EXPECT_TRUE(writer.data() == at_view.Snapshot()) << "round " << round;
    ASSERT_TRUE(at_view.Restore(live.Snapshot()).ok());
  }
}

TEST(KvSnapshotViewTest, ASecondViewWhileOneIsActiveIsACopy) {
  std::mt19937_64 rng(3);
  KvStore kv;
  ApplyRandom(&rng, 500, 2000, {&kv});
  const std::string first_state = kv.Snapshot();
  std::unique_ptr<SnapshotView> first = kv.TakeSnapshotView();
  ApplyRandom(&rng, 500, 500, {&kv});
  const std::string second_state = kv.Snapshot();
  std::unique_ptr<SnapshotView> second = kv.TakeSnapshotView();  // must not block
  ApplyRandom(&rng, 500, 500, {&kv});
  StringSnapshotWriter a;
  StringSnapshotWriter b;
  ASSERT_TRUE(second->WriteTo(&b).ok());
  ASSERT_TRUE(first->WriteTo(&a).ok());
  EXPECT_TRUE(a.data() == first_state);
  EXPECT_TRUE(b.data() == second_state);
  EXPECT_FALSE(kv.TEST_streaming_view_active());
}

TEST(KvSnapshotViewTest, AnUnwrittenViewEndsWhenDestroyedAndAFailedWriteEndsItToo) {
  KvStore kv;
  for (int i = 0; i < 1000; i++) Execute(&kv, KvStore::EncodePut("k" + std::to_string(i), "v"));
  kv.TakeSnapshotView().reset();
  EXPECT_FALSE(kv.TEST_streaming_view_active());

  class FullDisk final : public SnapshotWriter {
   public:
    Status Write(std::string_view) override {
      return writes_++ < 1 ? Status::Ok() : Status(StatusCode::kNoSpace, "full");
    }

   private:
    int writes_ = 0;
  };
  std::unique_ptr<SnapshotView> view = kv.TakeSnapshotView();
  FullDisk disk;
  EXPECT_EQ(view->WriteTo(&disk).code(), StatusCode::kNoSpace);
  EXPECT_FALSE(kv.TEST_streaming_view_active());
  Execute(&kv, KvStore::EncodePut("k1", "changed"));  // no view: nothing saved, nothing breaks
  StringSnapshotWriter writer;
  ASSERT_TRUE(kv.TakeSnapshotView()->WriteTo(&writer).ok());
  EXPECT_TRUE(writer.data() == kv.Snapshot());
}

// The view keeps what it saw even if the state is replaced (Restore) or the store is gone.
TEST(KvSnapshotViewTest, AViewSurvivesRestoreAndTheStoreItself) {
  auto kv = std::make_unique<KvStore>();
  for (int i = 0; i < 700; i++) {
    Execute(kv.get(), KvStore::EncodePut("k" + std::to_string(i), std::to_string(i)));
  }
  const std::string at_view = kv->Snapshot();
  std::unique_ptr<SnapshotView> restored_under = kv->TakeSnapshotView();
  KvStore other;
  Execute(&other, KvStore::EncodePut("other", "1"));
  ASSERT_TRUE(kv->Restore(other.Snapshot()).ok());
  EXPECT_FALSE(kv->TEST_streaming_view_active()) << "the new state has no view";
  std::unique_ptr<SnapshotView> destroyed_under = kv->TakeSnapshotView();
  const std::string second_view = kv->Snapshot();
  kv.reset();
  StringSnapshotWriter a;
  StringSnapshotWriter b;
  ASSERT_TRUE(restored_under->WriteTo(&a).ok());
  ASSERT_TRUE(destroyed_under->WriteTo(&b).ok());
  EXPECT_TRUE(a.data() == at_view);
  EXPECT_TRUE(b.data() == second_view);
}

// Hands out a few bytes per Read, and counts the most it was asked for at once.
class CountingReader final : public SnapshotReader {
 public:
  explicit CountingReader(std::string data) : data_(std::move(data)) {}
  Status Read(size_t bytes_max, std::string* out) override {
    bytes_max_seen = std::max(bytes_max_seen, bytes_max);
    const size_t n = std::min({bytes_max, data_.size() - offset_, size_t{3}});
    out->assign(data_, offset_, n);
    offset_ += n;
    return Status::Ok();
  }
  size_t bytes_max_seen = 0;

 private:
  const std::string data_;
  size_t offset_ = 0;
};

TEST(KvSnapshotViewTest, RestoreFromStreamsAndRefusesDamagedLengthsBeforeReading) {
  KvStore kv;
  for (int i = 0; i < 300; i++) {
    Execute(&kv, KvStore::EncodePut("key" + std::to_string(i), std::string(i % 50, 'v')));
  }
  const std::string good = kv.Snapshot();
  KvStore restored;
  CountingReader reader(good);
  ASSERT_TRUE(restored.RestoreFrom(&reader).ok());
  EXPECT_TRUE(restored.Snapshot() == good);
  EXPECT_LE(reader.bytes_max_seen, KvStore::Limits().value_bytes_max) << "read piece by piece";

  // A key length of 2^32 - 1: refused as over the limit, nothing read or allocated for it.
  std::string huge_key = good.substr(0, 9);
  huge_key += std::string(4, '\xff');
  CountingReader huge(huge_key + std::string(100, 'k'));
  EXPECT_EQ(restored.RestoreFrom(&huge).code(), StatusCode::kCorruption);
  EXPECT_LE(huge.bytes_max_seen, 9u);
  EXPECT_TRUE(restored.Snapshot() == good) << "unchanged after a failed restore";
}

// Through the Applier and a stream, the same as through strings (the runtime's path).
TEST(KvSnapshotViewTest, ApplierSnapshotsOfAKvStoreUseTheView) {
  Applier applier(std::make_unique<KvStore>());
  std::vector<paxos::Entry> entries;
  for (paxos::Slot s = 1; s <= 300; s++) {
    paxos::Command c;
    c.payload = KvStore::EncodePut("k" + std::to_string(s % 97), std::to_string(s));
    entries.push_back(paxos::Entry{
        .slot = s, .ballot = {}, .value = {.epoch = {}, .leader_start = false, .commands = {c}}});
  }
  std::vector<Reply> replies;
  applier.Apply({entries.begin(), entries.begin() + 200}, &replies);
  const std::string at_begin = applier.Snapshot();
  std::unique_ptr<PendingSnapshot> pending = applier.BeginSnapshot();
  EXPECT_TRUE(static_cast<KvStore&>(applier.machine()).TEST_streaming_view_active());
  applier.Apply({entries.begin() + 200, entries.end()}, &replies);
  StringSnapshotWriter writer;
  ASSERT_TRUE(pending->WriteTo(&writer).ok());
  EXPECT_TRUE(writer.data() == at_begin);
}

}  // namespace
}  // namespace ballot::samples
