// Fuzz target: samples::LockService::Restore (see restore_check.h for the properties).
#include "statemachine/samples/lock.h"
#include "tests/fuzz/fuzz_target.h"
#include "tests/fuzz/restore_check.h"

BALLOT_FUZZ_TARGET(lock_restore) {
  using ballot::samples::LockService;
  ballot::fuzz::CheckRestore(
      ballot::fuzz::AsView(data, size), [] { return std::make_unique<LockService>(); },
      [](ballot::StateMachine& m) {
        ballot::fuzz::ApplyAll(m, 1, 1000, {LockService::EncodeAcquire("a", "o1", 5000)});
      },
      [](ballot::StateMachine& m) {
        // At the restored clock and far later: acquire, renew, release, steal an expired lock.
        for (const uint64_t stamp_ms : {uint64_t{0}, uint64_t{1} << 40, ~uint64_t{0}}) {
          auto outcomes = ballot::fuzz::ApplyAll(
              m, 100, stamp_ms,
              {LockService::EncodeAcquire("a", "o1", 5000), LockService::EncodeKeepAlive("a", "o1"),
               LockService::EncodeAcquire("b", "o2", 5000), LockService::EncodeRelease("a", "o1"),
               LockService::EncodeAcquire("a", "o3", 5000)});
          for (const auto& o : outcomes) {
            if (o.code == ballot::StatusCode::kOk && !o.data.empty()) {
              CHECK(LockService::DecodeGrant(o.data).ok());
            }
          }
          auto got = m.Query(LockService::EncodeGet("a"));
          CHECK(got.code == ballot::StatusCode::kOk);
          CHECK(LockService::DecodeGet(got.data).ok());
        }
      });
}
