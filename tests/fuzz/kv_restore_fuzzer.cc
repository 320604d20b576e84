// Fuzz target: samples::KvStore::Restore (see restore_check.h for the properties).
#include "statemachine/samples/kv.h"
#include "tests/fuzz/fuzz_target.h"
#include "tests/fuzz/restore_check.h"

BALLOT_FUZZ_TARGET(kv_restore) {
  using ballot::samples::KvStore;
  // Small limits, so that the fuzzer reaches them.
  const KvStore::Limits limits{.key_bytes_max = 16, .value_bytes_max = 64, .keys_max = 8};
  ballot::fuzz::CheckRestore(
      ballot::fuzz::AsView(data, size), [&] { return std::make_unique<KvStore>(limits); },
      [](ballot::StateMachine& m) {
        ballot::fuzz::ApplyAll(m, 1, 0,
                               {KvStore::EncodePut("a", "1"), KvStore::EncodePut("b", "2")});
      },
      [](ballot::StateMachine& m) {
        auto outcomes = ballot::fuzz::ApplyAll(
            m, 100, 0,
            {KvStore::EncodePut("a", "x"), KvStore::EncodeCompareAndSet("a", "x", "y"),
             KvStore::EncodeCompareAndSet("new", std::nullopt, "z"), KvStore::EncodeDelete("b"),
             KvStore::EncodePut("k", "v")});
        CHECK(outcomes[1].code == ballot::StatusCode::kOk ||
              outcomes[0].code != ballot::StatusCode::kOk);
        auto got = m.Query(KvStore::EncodeGet("a"));
        CHECK(got.code == ballot::StatusCode::kOk);
        CHECK(KvStore::DecodeGet(got.data).ok());
        CHECK(static_cast<KvStore&>(m).size() <= 8u);
      });
}
