// A phase-1 report must fit one message. Before the bound, an acceptor answered a candidate far
// behind it with every entry from the candidate's first unchosen slot on: past the transport's
// frame limit the reply was dropped, and elections repeated forever.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "paxos/replica.h"

namespace ballot::paxos {
namespace {

constexpr Slot kChosenBelow = 10001;  // the acceptor knows slots 1..10000 chosen

// A restarted acceptor honours a lease it may have granted before: tick past it, but not into
// an election of its own.
void WaitOutStartupLease(Replica* r, const Options& o) {
  for (uint32_t i = 0; i <= o.lease_ticks; ++i) {
    r->Tick();
    while (r->HasReady()) {
      if (r->TakeReady().persist) r->Advance();
    }
  }
}

std::unique_ptr<Replica> AcceptorWithLongLog(size_t promise_entries_max) {
  Options o;
  o.id = 1;
  o.members = {1, 2, 3};
  o.promise_entries_max = promise_entries_max;
  DurableState d;
  d.promised = Ballot(1, 2);
  for (Slot s = 1; s < kChosenBelow; ++s) {
    Entry e;
    e.slot = s;
    e.ballot = Ballot(1, 2);
    e.value.epoch = Ballot(1, 2);
    e.value.commands.push_back(Command{7, s, 0, 0, 0, std::string(100, 'x')});
    d.entries.push_back(e);
  }
  d.chosen_below = kChosenBelow;
  auto r = std::make_unique<Replica>(o, d);
  WaitOutStartupLease(r.get(), o);
  return r;
}

// The Promise this replica sends to node 3 for a Prepare at `ballot` from `slot`.
Message PromiseFor(Replica* r, Ballot ballot, Slot slot) {
  Message prepare;
  prepare.type = MessageType::kPrepare;
  prepare.from = 3;
  prepare.to = 1;
  prepare.ballot = ballot;
  prepare.slot = slot;
  r->Step(prepare);
  for (int i = 0; i < 10 && r->HasReady(); ++i) {
    Ready rd = r->TakeReady();
    for (const Message& m : rd.send_now) {
      if (m.type == MessageType::kPromise) return m;
    }
    if (rd.persist) r->Advance();
    for (const Message& m : rd.send_after_persist) {
      if (m.type == MessageType::kPromise) return m;
    }
  }
  ADD_FAILURE() << "no Promise sent";
  return Message{};
}

TEST(PromiseBoundTest, CandidateTooFarBehindIsRefusedWithoutEntries) {
  auto r = AcceptorWithLongLog(/*promise_entries_max=*/1000);
  Message reply = PromiseFor(r.get(), Ballot(5, 3), /*slot=*/1);
  EXPECT_FALSE(reply.ok);
  EXPECT_TRUE(reply.entries.empty());
  EXPECT_EQ(reply.commit, kChosenBelow);  // tells it how far behind it is
  // Nothing was promised: a lower ballot than the refused one is still acceptable.
  EXPECT_EQ(r->status().promised, Ballot(1, 2));
}

TEST(PromiseBoundTest, CandidateWithinTheBoundGetsItsReport) {
  auto r = AcceptorWithLongLog(/*promise_entries_max=*/1000);
  Message reply = PromiseFor(r.get(), Ballot(5, 3), /*slot=*/kChosenBelow - 500);
  EXPECT_TRUE(reply.ok);
  EXPECT_EQ(reply.entries.size(), 500u);
  EXPECT_EQ(r->status().promised, Ballot(5, 3));
}

TEST(PromiseBoundTest, ReportOverTheByteBoundIsNotSent) {
  // 10000 entries of ~100 bytes do not fit 64 KiB: the reply carries none and says no.
  Options o;
  o.id = 1;
  o.members = {1, 2, 3};
  o.message_bytes_max = 64 << 10;
  o.batch_bytes_max = 64 << 10;
  o.promise_entries_max = 100000;
  DurableState d;
  for (Slot s = 1; s < kChosenBelow; ++s) {
    Entry e;
    e.slot = s;
    e.ballot = Ballot(1, 2);
    e.value.epoch = Ballot(1, 2);
    e.value.commands.push_back(Command{7, s, 0, 0, 0, std::string(100, 'x')});
    d.entries.push_back(e);
  }
  d.chosen_below = kChosenBelow;
  Replica small(o, d);
  WaitOutStartupLease(&small, o);
  Message reply = PromiseFor(&small, Ballot(5, 3), /*slot=*/1);
  EXPECT_FALSE(reply.ok);
  EXPECT_TRUE(reply.entries.empty());
}

}  // namespace
}  // namespace ballot::paxos
