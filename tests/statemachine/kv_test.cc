#include "statemachine/samples/kv.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace ballot::samples
