#include "statemachine/samples/lock.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "statemachine/applier.h"
#include "statemachine/byte_codec.h"
#include "statemachine/watchable.h"

namespace ballot::samples {
namespace {

using Grant = LockService::Grant;
using Holder = LockService::Holder;

// One command as the log would carry it: the payload, its slot and the leader's stamp.
struct Cmd {
  paxos::Slot slot = 1;
  uint64_t stamp_ms = 0;
  std::string payload;
};

Outcome Execute(LockService* locks, const Cmd& cmd) {
  const AppliedCommand command{.slot = cmd.slot,
                               .epoch = 1,
                               .client_id = 1,
                               .stamp_ms = cmd.stamp_ms,
                               .payload = cmd.payload};
  std::vector<Outcome> outcomes;
  locks->Apply({&command, 1}, &outcomes);
  EXPECT_EQ(outcomes.size(), 1u);
  return outcomes.empty() ? Outcome{} : outcomes[0];
}

// Runs a sequence of commands on one LockService, as a test script: slots count up from 1.
class Script {
 public:
  explicit Script(LockService::Limits limits = {}) : locks_(limits) {}

  Outcome Acquire(uint64_t at_ms, std::string_view name, std::string_view owner, uint64_t ttl) {
    return Run(at_ms, LockService::EncodeAcquire(name, owner, ttl));
  }
  Outcome KeepAlive(uint64_t at_ms, std::string_view name, std::string_view owner) {
    return Run(at_ms, LockService::EncodeKeepAlive(name, owner));
  }
  Outcome Release(uint64_t at_ms, std::string_view name, std::string_view owner) {
    return Run(at_ms, LockService::EncodeRelease(name, owner));
  }
  Outcome Run(uint64_t at_ms, std::string payload) {
    return Execute(&locks_, Cmd{next_slot_++, at_ms, std::move(payload)});
  }
  std::optional<Holder> Get(std::string_view name) const {
    const Outcome outcome = locks_.Query(LockService::EncodeGet(name));
    EXPECT_EQ(outcome.code, StatusCode::kOk) << outcome.message;
    Result<std::optional<Holder>> holder = LockService::DecodeGet(outcome.data);
    EXPECT_TRUE(holder.ok()) << holder.status().ToString();
    return holder.ok() ? holder.value() : std::nullopt;
  }

  LockService& locks() { return locks_; }
  paxos::Slot next_slot() const { return next_slot_; }

 private:
  LockService locks_;
  paxos::Slot next_slot_ = 1;
};

Grant GrantOf(const Outcome& outcome) {
  EXPECT_EQ(outcome.code, StatusCode::kOk) << outcome.message;
  Result<Grant> grant = LockService::DecodeGrant(outcome.data);
  EXPECT_TRUE(grant.ok()) << grant.status().ToString();
  return grant.ok() ? grant.value() : Grant{};
}

TEST(LockServiceTest, AcquireGrantsAndGetReportsTheHolder) {
  Script s;
  EXPECT_EQ(s.Get("leader"), std::nullopt);
  const Grant g = GrantOf(s.Acquire(1000, "leader", "alice", 500));
  EXPECT_GE(g.token, 1u);
  EXPECT_EQ(g.expires_at_ms, 1500u);
  EXPECT_EQ(s.Get("leader"), (Holder{"alice", g.token, 1500}));
  EXPECT_EQ(s.locks().now_ms(), 1000u);
}

TEST(LockServiceTest, AcquireWhileHeldByAnotherIsAbortedNamingTheHolder) {
  Script s;
  const Grant g = GrantOf(s.Acquire(1000, "leader", "alice", 500));
  const Outcome refused = s.Acquire(1200, "leader", "bob", 500);
  EXPECT_EQ(refused.code, StatusCode::kAborted);
  EXPECT_NE(refused.message.find("alice"), std::string::npos) << refused.message;
  EXPECT_NE(refused.message.find("1500"), std::string::npos) << refused.message;
  EXPECT_EQ(s.Get("leader"), (Holder{"alice", g.token, 1500})) << "a refusal changes nothing";
}

TEST(LockServiceTest, HolderReacquiringExtendsWithTheSameToken) {
  Script s;
  const Grant first = GrantOf(s.Acquire(1000, "leader", "alice", 500));
  const Grant again = GrantOf(s.Acquire(1400, "leader", "alice", 800));
  EXPECT_EQ(again.token, first.token);
  EXPECT_EQ(again.expires_at_ms, 2200u);
  // The new TTL is what keepalive uses from now on.
  const Grant kept = GrantOf(s.KeepAlive(2000, "leader", "alice"));
  EXPECT_EQ(kept.token, first.token);
  EXPECT_EQ(kept.expires_at_ms, 2800u);
}

TEST(LockServiceTest, ExpiryIsExactlyAtExpiresAt) {
  Script s;
  const Grant a = GrantOf(s.Acquire(1000, "leader", "alice", 100));
  EXPECT_EQ(s.Acquire(1099, "leader", "bob", 100).code, StatusCode::kAborted);
  const Grant b = GrantOf(s.Acquire(1100, "leader", "bob", 100));  // expires_at <= now: free
  EXPECT_GT(b.token, a.token);
  EXPECT_EQ(s.Get("leader")->owner, "bob");
}

TEST(LockServiceTest, TimeIsTheStampedTimeAndNeverGoesBack) {
  Script s;
  GrantOf(s.Acquire(10'000, "leader", "alice", 1000));
  // A command stamped earlier (a new leader with a slower clock) does not roll time back.
  EXPECT_EQ(s.Acquire(500, "other", "carol", 1000).code, StatusCode::kOk);
  EXPECT_EQ(s.locks().now_ms(), 10'000u);
  EXPECT_EQ(s.Get("other")->expires_at_ms, 11'000u) << "granted at the machine's now, not 500";
  // Without commands time stands still: the lock stays held however long the test takes.
  EXPECT_EQ(s.Get("leader")->owner, "alice");
  // Every command advances time, even one the rules refuse or that is malformed.
  EXPECT_EQ(s.Run(10'999, "garbage").code, StatusCode::kInvalidArgument);
  EXPECT_EQ(s.locks().now_ms(), 10'999u);
  EXPECT_EQ(s.Get("leader")->owner, "alice");
  EXPECT_EQ(s.KeepAlive(11'000, "leader", "mallory").code, StatusCode::kAborted);
  EXPECT_EQ(s.Get("leader"), std::nullopt) << "expired by the refused command's stamp";
}

TEST(LockServiceTest, StaleHolderIsReplacedWithAHigherTokenAndCannotKeepAlive) {
  Script s;
  const Grant a = GrantOf(s.Acquire(1000, "leader", "alice", 1000));
  GrantOf(s.KeepAlive(1500, "leader", "alice"));  // until 2500
  // Alice stalls (a long GC pause); nothing she sends arrives until after 2500.
  const Outcome early = s.Acquire(2499, "leader", "bob", 1000);
  EXPECT_EQ(early.code, StatusCode::kAborted);
  const Grant b = GrantOf(s.Acquire(2500, "leader", "bob", 1000));
  EXPECT_GT(b.token, a.token);
  // Alice wakes up: her keepalive and release are refused; her hold is over.
  const Outcome keep = s.KeepAlive(2600, "leader", "alice");
  EXPECT_EQ(keep.code, StatusCode::kAborted);
  EXPECT_NE(keep.message.find("not held by 'alice'"), std::string::npos) << keep.message;
  EXPECT_NE(keep.message.find("bob"), std::string::npos) << keep.message;
  EXPECT_EQ(s.Release(2600, "leader", "alice").code, StatusCode::kAborted);
  EXPECT_EQ(s.Get("leader"), (Holder{"bob", b.token, 3500}));
  // If she asks again she waits in line like anyone else.
  EXPECT_EQ(s.Acquire(2700, "leader", "alice", 1000).code, StatusCode::kAborted);
}

TEST(LockServiceTest, KeepAliveAndReleaseRules) {
  Script s;
  EXPECT_EQ(s.KeepAlive(0, "l", "alice").code, StatusCode::kAborted) << "never held";
  EXPECT_EQ(s.Release(0, "l", "alice").code, StatusCode::kAborted) << "never held";
  const Grant a = GrantOf(s.Acquire(100, "l", "alice", 50));
  EXPECT_EQ(s.KeepAlive(120, "l", "bob").code, StatusCode::kAborted);
  EXPECT_EQ(s.Release(120, "l", "bob").code, StatusCode::kAborted);
  EXPECT_EQ(GrantOf(s.KeepAlive(140, "l", "alice")).expires_at_ms, 190u);
  EXPECT_EQ(s.Release(150, "l", "alice").code, StatusCode::kOk);
  EXPECT_EQ(s.Get("l"), std::nullopt);
  EXPECT_EQ(s.Release(150, "l", "alice").code, StatusCode::kAborted) << "released already";
  EXPECT_EQ(s.KeepAlive(150, "l", "alice").code, StatusCode::kAborted) << "released already";
  // After a release anyone, the old holder too, gets a new, higher token.
  const Grant again = GrantOf(s.Acquire(160, "l", "alice", 50));
  EXPECT_GT(again.token, a.token);
  // A holder whose lock expired cannot keep it alive: someone may already act on its expiry.
  EXPECT_EQ(s.KeepAlive(210, "l", "alice").code, StatusCode::kAborted);
  const Grant after_expiry = GrantOf(s.Acquire(210, "l", "alice", 50));
  EXPECT_GT(after_expiry.token, again.token) << "an expired hold is over, even for its owner";
}

TEST(LockServiceTest, TokensAreAnchoredToTheSlot) {
  LockService locks;
  // Slot 1000, the first grant: the token is the slot.
  Grant g = GrantOf(Execute(&locks, Cmd{1000, 0, LockService::EncodeAcquire("a", "o", 100)}));
  EXPECT_EQ(g.token, 1000u);
  // Two grants in one slot (a batch): still distinct and increasing.
  g = GrantOf(Execute(&locks, Cmd{1001, 0, LockService::EncodeAcquire("b", "o", 100)}));
  const Grant same_slot =
      GrantOf(Execute(&locks, Cmd{1001, 0, LockService::EncodeAcquire("c", "o", 100)}));
  EXPECT_EQ(g.token, 1001u);
  EXPECT_EQ(same_slot.token, 1002u);
  EXPECT_EQ(locks.last_token(), 1002u);
}

TEST(LockServiceTest, BoundsAreInvalidArgumentAndChangeNothing) {
  LockService::Limits limits;
  limits.name_bytes_max = 8;
  limits.owner_bytes_max = 4;
  limits.ttl_ms_min = 10;
  limits.ttl_ms_max = 1000;
  Script s(limits);
  const std::vector<std::string> bad = {
      LockService::EncodeAcquire("", "o", 100),
      LockService::EncodeAcquire("123456789", "o", 100),
      LockService::EncodeAcquire("n", "", 100),
      LockService::EncodeAcquire("n", "12345", 100),
      LockService::EncodeAcquire("n", "o", 9),
      LockService::EncodeAcquire("n", "o", 1001),
      LockService::EncodeAcquire("n", "o", 0),
      LockService::EncodeKeepAlive("", "o"),
      LockService::EncodeRelease("n", ""),
      LockService::EncodeGet("n"),  // a query is not a command
      "",
      std::string(1, '\x09'),
      LockService::EncodeAcquire("n", "o", 100) + "x",  // trailing bytes
      LockService::EncodeAcquire("n", "o", 100).substr(0, 10),
  };
  for (const std::string& payload : bad) {
    EXPECT_EQ(s.Run(5, payload).code, StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(s.locks().size(), 0u);
  EXPECT_EQ(s.locks().last_token(), 0u);
  EXPECT_EQ(s.Acquire(5, "12345678", "1234", 1000).code, StatusCode::kOk) << "at the limits";
  EXPECT_EQ(s.Acquire(5, "n", "o", 10).code, StatusCode::kOk);
}

TEST(LockServiceTest, TableFullIsAbortedUntilExpiredLocksCanBeForgotten) {
  LockService::Limits limits;
  limits.locks_max = 3;
  Script s(limits);
  GrantOf(s.Acquire(0, "a", "o", 100));
  GrantOf(s.Acquire(0, "b", "o", 200));
  GrantOf(s.Acquire(0, "c", "o", 200));
  const Outcome full = s.Acquire(50, "d", "o", 100);
  EXPECT_EQ(full.code, StatusCode::kAborted);
  EXPECT_NE(full.message.find("locks_max"), std::string::npos) << full.message;
  EXPECT_EQ(s.Acquire(50, "a", "o2", 100).code, StatusCode::kAborted);
  GrantOf(s.Acquire(50, "a", "o", 500));  // the holder of an existing lock can still extend it
  // At 200, "b" and "c" have expired: they are forgotten to make room for "d".
  GrantOf(s.Acquire(200, "d", "o", 100));
  EXPECT_EQ(s.locks().size(), 2u);
  EXPECT_EQ(s.Get("b"), std::nullopt);
}

TEST(LockServiceTest, QueryRejectsMalformedRequests) {
  Script s;
  EXPECT_EQ(s.locks().Query("").code, StatusCode::kInvalidArgument);
  EXPECT_EQ(s.locks().Query(LockService::EncodeRelease("a", "b")).code,
            StatusCode::kInvalidArgument);
  EXPECT_EQ(s.locks().Query(LockService::EncodeGet("")).code, StatusCode::kInvalidArgument);
  EXPECT_EQ(s.locks().Query(LockService::EncodeGet("a") + "x").code, StatusCode::kInvalidArgument);
}

TEST(LockServiceTest, DecodersRejectMalformedData) {
  EXPECT_FALSE(LockService::DecodeGrant("").ok());
  EXPECT_FALSE(LockService::DecodeGrant(std::string(15, '\1')).ok());
  EXPECT_FALSE(LockService::DecodeGrant(std::string(17, '\1')).ok());
  EXPECT_FALSE(LockService::DecodeGrant(std::string(16, '\0')).ok()) << "token 0 is no token";
  EXPECT_FALSE(LockService::DecodeGet("").ok());
  EXPECT_FALSE(LockService::DecodeGet("\x02").ok());
  EXPECT_FALSE(LockService::DecodeGet(std::string("\x00\x00", 2)).ok());
  EXPECT_FALSE(LockService::DecodeGet("\x01").ok());
  Result<std::optional<Holder>> absent = LockService::DecodeGet(std::string(1, '\0'));
  ASSERT_TRUE(absent.ok());
  EXPECT_EQ(absent.value(), std::nullopt);
}

// --- Randomized: many seeded operations against a reference model ---

struct ModelLock {
  std::string owner;
  uint64_t token = 0;
  uint64_t ttl_ms = 0;
  uint64_t expires_at_ms = 0;
};

std::vector<Cmd> RandomCommands(uint64_t seed, int count) {
  std::mt19937_64 rng(seed);
  const std::vector<std::string> names = {"a", "b", "c", "leader"};
  const std::vector<std::string> owners = {"o1", "o2", "o3"};
  std::vector<Cmd> cmds;
  paxos::Slot slot = 1;
  uint64_t stamp = 1'000;
  for (int i = 0; i < count; ++i) {
    if (rng() % 3 != 0) ++slot;  // sometimes several commands share a slot (a batch)
    // Mostly forward in small steps; sometimes a jump; sometimes an older stamp (a new leader
    // with a slower clock), which must not roll time back.
    const uint64_t r = rng() % 20;
    const uint64_t at = r == 0   ? stamp - std::min<uint64_t>(stamp, rng() % 500)
                        : r == 1 ? stamp + 2'000
                                 : (stamp += rng() % 60);
    const std::string& name = names[rng() % names.size()];
    const std::string& owner = owners[rng() % owners.size()];
    std::string payload;
    switch (rng() % 4) {
      case 0:
      case 1:
        payload = LockService::EncodeAcquire(name, owner, 10 + rng() % 300);
        break;
      case 2:
        payload = LockService::EncodeKeepAlive(name, owner);
        break;
      default:
        payload = LockService::EncodeRelease(name, owner);
    }
    cmds.push_back(Cmd{slot, at, std::move(payload)});
  }
  return cmds;
}

TEST(LockServiceTest, RandomOperationsKeepTokensStrictlyIncreasingAndMatchTheModel) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const std::vector<Cmd> cmds = RandomCommands(seed, 2'000);
    LockService locks;
    std::map<std::string, ModelLock, std::less<>> model;
    uint64_t now = 0;
    uint64_t highest_token = 0;
    int grants = 0;
    for (const Cmd& cmd : cmds) {
      now = std::max(now, cmd.stamp_ms);
      const Outcome out = Execute(&locks, cmd);
      ASSERT_NE(out.code, StatusCode::kInvalidArgument) << out.message;
      // Read our own payload back: the operation and its fields.
      ByteReader reader(cmd.payload);
      uint8_t op = 0;
      std::string_view name;
      std::string_view owner;
      uint64_t ttl = 0;
      ASSERT_TRUE(reader.GetU8(&op) && reader.GetBytes(&name) && reader.GetBytes(&owner));
      if (op == 1) {
        ASSERT_TRUE(reader.GetU64(&ttl));
      }
      auto it = model.find(name);
      const bool held = it != model.end() && it->second.expires_at_ms > now;
      const bool mine = held && it->second.owner == owner;
      if (op == 1) {  // acquire
        if (held && !mine) {
          ASSERT_EQ(out.code, StatusCode::kAborted);
          continue;
        }
        const Grant g = GrantOf(out);
        ASSERT_EQ(g.expires_at_ms, now + ttl);
        if (mine) {
          ASSERT_EQ(g.token, it->second.token) << "a holder's re-acquire keeps its token";
        } else {
          ASSERT_GT(g.token, highest_token) << "every grant's token beats every earlier one";
          ASSERT_GE(g.token, cmd.slot);
          highest_token = g.token;
          ++grants;
        }
        model[std::string(name)] = ModelLock{std::string(owner), g.token, ttl, g.expires_at_ms};
      } else if (op == 2) {  // keepalive
        if (!mine) {
          ASSERT_EQ(out.code, StatusCode::kAborted);
          continue;
        }
        const Grant g = GrantOf(out);
        ASSERT_EQ(g.token, it->second.token);
        ASSERT_EQ(g.expires_at_ms, now + it->second.ttl_ms);
        it->second.expires_at_ms = g.expires_at_ms;
      } else {  // release
        if (!mine) {
          ASSERT_EQ(out.code, StatusCode::kAborted);
          continue;
        }
        ASSERT_EQ(out.code, StatusCode::kOk);
        model.erase(it);
      }
    }
    EXPECT_EQ(locks.last_token(), highest_token);
    EXPECT_GT(grants, 100) << "the workload should exercise grants";
  }
}

TEST(LockServiceTest, SameCommandsWithSameStampsGiveIdenticalResultsOnTwoInstances) {
  const std::vector<Cmd> cmds = RandomCommands(42, 3'000);
  LockService one;
  LockService two;
  std::vector<Outcome> outcomes_one;
  for (const Cmd& cmd : cmds) outcomes_one.push_back(Execute(&one, cmd));
  // The second replica gets the same commands grouped into batches of varying size.
  std::vector<Outcome> outcomes_two;
  std::mt19937_64 rng(7);
  for (size_t i = 0; i < cmds.size();) {
    const size_t n = std::min<size_t>(cmds.size() - i, 1 + rng() % 17);
    std::vector<AppliedCommand> batch;
    for (size_t j = i; j < i + n; ++j) {
      batch.push_back(AppliedCommand{cmds[j].slot, 1, 1, cmds[j].stamp_ms, cmds[j].payload});
    }
    two.Apply(batch, &outcomes_two);
    i += n;
  }
  ASSERT_EQ(outcomes_one.size(), outcomes_two.size());
  for (size_t i = 0; i < outcomes_one.size(); ++i) {
    ASSERT_EQ(outcomes_one[i], outcomes_two[i]) << "command " << i;
  }
  EXPECT_EQ(one.Snapshot(), two.Snapshot());
}

// --- Snapshots ---

TEST(LockServiceTest, SnapshotRoundTripGivesAnEqualMachine) {
  const std::vector<Cmd> cmds = RandomCommands(9, 1'000);
  LockService original;
  for (size_t i = 0; i < cmds.size() / 2; ++i) Execute(&original, cmds[i]);
  const std::string snapshot = original.Snapshot();
  LockService restored;
  GrantOf(Execute(&restored, Cmd{1, 5, LockService::EncodeAcquire("junk", "x", 100)}));
  ASSERT_TRUE(restored.Restore(snapshot).ok());
  EXPECT_EQ(restored.Snapshot(), snapshot);
  EXPECT_EQ(restored.now_ms(), original.now_ms());
  EXPECT_EQ(restored.last_token(), original.last_token());
  for (const char* name : {"a", "b", "c", "leader", "junk"}) {
    EXPECT_EQ(restored.Query(LockService::EncodeGet(name)),
              original.Query(LockService::EncodeGet(name)));
  }
  // Both continue identically.
  for (size_t i = cmds.size() / 2; i < cmds.size(); ++i) {
    ASSERT_EQ(Execute(&restored, cmds[i]), Execute(&original, cmds[i])) << "command " << i;
  }
  EXPECT_EQ(restored.Snapshot(), original.Snapshot());
}

TEST(LockServiceTest, GarbageSnapshotsAreRefusedAndLeaveTheStateUnchanged) {
  Script s;
  GrantOf(s.Acquire(100, "a", "alice", 100));
  GrantOf(s.Acquire(100, "b", "bob", 100));
  const std::string good = s.locks().Snapshot();
  LockService target;
  GrantOf(Execute(&target, Cmd{7, 3, LockService::EncodeAcquire("mine", "me", 100)}));
  const std::string before = target.Snapshot();
  // Every truncation of a good snapshot, and trailing bytes.
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(target.Restore(good.substr(0, n)).ok()) << "truncated to " << n;
  }
  EXPECT_FALSE(target.Restore(good + "x").ok());
  EXPECT_FALSE(target.Restore("garbage").ok());
  // Random bytes and single-byte corruptions never crash; a refusal leaves the state alone.
  std::mt19937_64 rng(3);
  for (int i = 0; i < 2'000; ++i) {
    std::string bytes = good;
    bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
    if (!target.Restore(bytes).ok()) {
      EXPECT_EQ(target.Snapshot(), before);
    }
    ASSERT_TRUE(target.Restore(before).ok());
  }
  EXPECT_EQ(target.Restore(std::string(1, '\1') + std::string(100, '\xff')).code(),
            StatusCode::kCorruption);
  EXPECT_EQ(target.Snapshot(), before);
}

TEST(LockServiceTest, SnapshotInvariantsAreChecked) {
  // A hand-made snapshot whose lock has a token above last_token was not written by Snapshot().
  Script s;
  GrantOf(s.Acquire(100, "a", "alice", 100));
  std::string snap = s.locks().Snapshot();
  // Layout: version(1) now(8) last_token(8) count(8) ...; zero last_token.
  for (int i = 9; i < 17; ++i) snap[i] = 0;
  LockService target;
  EXPECT_EQ(target.Restore(snap).code(), StatusCode::kCorruption);
}

// --- Watches (statemachine/watchable.h) ---

std::optional<WatchChange> Next(const LockService& locks, std::string_view name,
                                paxos::Slot after) {
  Result<std::optional<WatchChange>> r = locks.NextChange(LockService::EncodeGet(name), after);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : std::nullopt;
}

std::string Line(const std::optional<WatchChange>& change) {
  if (!change) return "none";
  auto holder = LockService::DecodeGet(change->data);
  EXPECT_TRUE(holder.ok());
  std::string who = holder.ok() && holder.value()
                        ? holder.value()->owner + ":" + std::to_string(holder.value()->token)
                        : "-";
  return std::to_string(change->slot) + " " + who + (change->gap ? " gap" : "");
}

TEST(LockServiceTest, WatchSeesGrantsReleasesAndExpiriesButNotExtensions) {
  Script s;
  EXPECT_EQ(Line(Next(s.locks(), "job", 0)), "none");
  const Grant a = GrantOf(s.Acquire(1000, "job", "a", 500));     // slot 1
  GrantOf(s.KeepAlive(1100, "job", "a"));                        // slot 2: not a change
  ASSERT_EQ(s.Release(1200, "job", "a").code, StatusCode::kOk);  // slot 3
  const Grant b = GrantOf(s.Acquire(1300, "job", "b", 100));     // slot 4, until 1400
  EXPECT_EQ(s.locks().NextDeadlineMs(), 1400u);
  // Nothing but time: the tick (slot 5) applies b's expiry.
  EXPECT_EQ(s.Run(1450, s.locks().TickCommand()).code, StatusCode::kOk);
  EXPECT_EQ(s.locks().NextDeadlineMs(), 0u);

  EXPECT_EQ(Line(Next(s.locks(), "job", 0)), "1 a:" + std::to_string(a.token));
  EXPECT_EQ(Line(Next(s.locks(), "job", 1)), "3 -");
  EXPECT_EQ(Line(Next(s.locks(), "job", 2)), "3 -");
  EXPECT_EQ(Line(Next(s.locks(), "job", 3)), "4 b:" + std::to_string(b.token));
  EXPECT_EQ(Line(Next(s.locks(), "job", 4)), "5 -");
  EXPECT_EQ(Line(Next(s.locks(), "job", 5)), "none");
  EXPECT_EQ(Line(Next(s.locks(), "job", Watchable::kCurrentState)), "5 -");
  EXPECT_EQ(Line(Next(s.locks(), "other", Watchable::kCurrentState)), "0 -");
  // A query that is not a get names nothing watchable.
  EXPECT_EQ(s.locks().NextChange(LockService::EncodeRelease("job", "a"), 0).status().code(),
            StatusCode::kInvalidArgument);
  // A tick with a name is malformed.
  ByteWriter bad;
  bad.PutU8(5);
  bad.PutBytes("job");
  EXPECT_EQ(s.Run(1500, bad.Release()).code, StatusCode::kInvalidArgument);
}

TEST(LockServiceTest, WatchCountsChangesInOneSlotOnce) {
  LockService locks;
  Execute(&locks, Cmd{1, 1000, LockService::EncodeAcquire("job", "a", 100)});
  // Slot 2 carries two commands: the first expires a's hold, the second grants b.
  const std::string tick = locks.TickCommand();
  const std::string acquire = LockService::EncodeAcquire("job", "b", 1000);
  const AppliedCommand batch[] = {
      {.slot = 2, .epoch = 1, .client_id = 1, .stamp_ms = 1200, .payload = tick},
      {.slot = 2, .epoch = 1, .client_id = 2, .stamp_ms = 1200, .payload = acquire}};
  std::vector<Outcome> outcomes;
  locks.Apply(batch, &outcomes);
  ASSERT_EQ(outcomes.size(), 2u);
  const Grant b = GrantOf(outcomes[1]);
  EXPECT_EQ(Line(Next(locks, "job", 1)), "2 b:" + std::to_string(b.token));
}

TEST(LockServiceTest, SnapshotKeepsEachLocksLastChangeSlot) {
  Script s;
  GrantOf(s.Acquire(1000, "job", "a", 60000));                   // slot 1
  ASSERT_EQ(s.Release(1100, "job", "a").code, StatusCode::kOk);  // slot 2
  const Grant b = GrantOf(s.Acquire(1200, "job", "b", 60000));   // slot 3
  GrantOf(s.Acquire(1300, "idle", "c", 60000));                  // slot 4
  LockService restored;
  ASSERT_TRUE(restored.Restore(s.locks().Snapshot()).ok());
  EXPECT_EQ(restored.Snapshot(), s.locks().Snapshot());
  // Nothing after the last change: wait.
  EXPECT_EQ(Line(Next(restored, "job", 3)), "none");
  // Right before it: the current state is the state after it, exactly.
  EXPECT_EQ(Line(Next(restored, "job", 2)), "3 b:" + std::to_string(b.token));
  // Further behind: the history is gone; the current state, flagged.
  EXPECT_EQ(Line(Next(restored, "job", 0)), "3 b:" + std::to_string(b.token) + " gap");
  // The expiry index is rebuilt: b's hold still has a deadline.
  EXPECT_EQ(restored.NextDeadlineMs(), 61200u);
  // Changes after the restore are exact again.
  Execute(&restored, Cmd{5, 1400, LockService::EncodeRelease("job", "b")});
  EXPECT_EQ(Line(Next(restored, "job", 3)), "5 -");
}

TEST(LockServiceTest, WatchFarBehindTheRecentHistoryGetsAGap) {
  Script s;
  for (int i = 0; i < 20; ++i) {
    GrantOf(s.Acquire(1000 + i, "job", "a", 60000));
    ASSERT_EQ(s.Release(1000 + i, "job", "a").code, StatusCode::kOk);
  }
  // 40 changes in slots 1..40; the newest kRecentChangesMax (16) are remembered: 25..40.
  EXPECT_EQ(Line(Next(s.locks(), "job", 0)), "25 a:25 gap");
  EXPECT_EQ(Line(Next(s.locks(), "job", 24)), "25 a:25");
  EXPECT_EQ(Line(Next(s.locks(), "job", 39)), "40 -");
}

TEST(LockServiceTest, VersionOneSnapshotsStillRestore) {
  // Version 1: version(1) now(8) last_token(8) count(8) and one lock, no change slots.
  ByteWriter w;
  w.PutU8(1);
  w.PutU64(1000);
  w.PutU64(7);
  w.PutU64(1);
  w.PutBytes("job");
  w.PutBytes("a");
  w.PutU64(7);
  w.PutU64(500);
  w.PutU64(1400);
  LockService locks;
  ASSERT_TRUE(locks.Restore(w.Release()).ok());
  EXPECT_EQ(locks.NextDeadlineMs(), 1400u);
  EXPECT_EQ(Line(Next(locks, "job", 0)), "none");  // no change slot known: wait for the next
}

// --- Through the Applier: slots and stamps as the runtime delivers them ---

TEST(LockServiceTest, ThroughTheApplierStaleHolderGetsReplaced) {
  Applier applier(std::make_unique<LockService>());
  auto entry = [](paxos::Slot slot, uint64_t stamp, uint64_t client, std::string payload) {
    paxos::Entry e;
    e.slot = slot;
    e.ballot = paxos::Ballot(1, 1);
    e.value.epoch = e.ballot;
    paxos::Command c;
    c.client_id = client;
    c.stamp_ms = stamp;
    c.payload = std::move(payload);
    e.value.commands.push_back(std::move(c));
    return e;
  };
  std::vector<Reply> replies;
  applier.Apply({entry(1, 1000, 1, LockService::EncodeAcquire("job", "w1", 500)),
                 entry(2, 1600, 2, LockService::EncodeAcquire("job", "w2", 500)),
                 entry(3, 1700, 1, LockService::EncodeKeepAlive("job", "w1"))},
                &replies);
  ASSERT_EQ(replies.size(), 3u);
  const Grant a = GrantOf(replies[0].outcome);
  const Grant b = GrantOf(replies[1].outcome);
  EXPECT_EQ(a.token, 1u);
  EXPECT_EQ(b.token, 2u);
  EXPECT_EQ(replies[2].outcome.code, StatusCode::kAborted);
}

}  // namespace
}  // namespace ballot::samples
