// WatchHub: serves watches (ClientRequest::kWatch) on a server, next to its state machine.
//
// It wraps the user's StateMachine (forwarding every call), so that it sees each applied batch
// and each restore where they happen, on the thread that applies, without hooks in the driver.
// If the machine is also a Watchable (statemachine/watchable.h) it answers watches from it; a
// machine without that refuses them with kInvalidArgument.
//
// A watch (query, after_slot) is answered at once if the machine knows a change above
// after_slot, else it is parked and answered by the first batch (or restore) that makes one
// known, or with "no change" once its wait ends. At most watches_max are parked per server; one
// more is refused with kOverloaded "too many watches". A watch of a client that went away stays
// parked until its wait ends (the server caps the wait at kWaitMax).
//
// Threads: every method but the two counters runs on the applying thread (the server's apply
// thread, or its io thread with apply_inline), which is also where the machine lives. Answers go
// out through `send`, which the server forwards to its io thread.
#ifndef BALLOT_NET_WATCH_HUB_H_
#define BALLOT_NET_WATCH_HUB_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/server/driver.h"
#include "net/wire.h"
#include "statemachine/state_machine.h"
#include "statemachine/watchable.h"

namespace ballot {

class WatchHub final : public StateMachine {
 public:
  using Clock = std::chrono::steady_clock;
  using Send = std::function<void(ClientTag, net::ClientResponse)>;
  static constexpr std::chrono::milliseconds kWaitMax{60000};

  WatchHub(std::unique_ptr<StateMachine> machine, size_t watches_max, Send send);

  // Applying thread. Answers at once (a change is known, the request is bad, or the table is
  // full) or parks the watch until a change or its wait ends.
  void Add(ClientTag tag, net::WatchRequest request);
  // Applying thread: answers "no change" to every parked watch whose wait ended by `now`.
  void ExpireWaits(Clock::time_point now);

  // Any thread.
  size_t parked() const { return parked_count_.load(); }
  // The machine's Watchable::NextDeadlineMs() after the last batch (0: none, or not Watchable).
  uint64_t next_deadline_ms() const { return next_deadline_ms_.load(); }
  // Constant: the machine's tick command (empty if it has none).
  const std::string& tick_command() const { return tick_command_; }

  // StateMachine: forwarded to the wrapped machine; after a batch or a restore, parked watches
  // that now have a change are answered.
  void Apply(std::span<const AppliedCommand> batch, std::vector<Outcome>* outcomes) override;
  Outcome Query(std::string_view request) const override { return machine_->Query(request); }
  std::string Snapshot() const override { return machine_->Snapshot(); }
  Status Restore(std::string_view snapshot) override;
  std::unique_ptr<SnapshotView> TakeSnapshotView() override { return machine_->TakeSnapshotView(); }
  Status RestoreFrom(SnapshotReader* in) override;
  void OnLeaderStart(uint64_t epoch) override { machine_->OnLeaderStart(epoch); }
  void OnLeaderStop(uint64_t epoch) override { machine_->OnLeaderStop(epoch); }

 private:
  struct Parked {
    ClientTag tag;
    net::WatchRequest request;
    Clock::time_point deadline;
  };
  // Parked watches of one query. After a batch the machine is asked once per query, from the
  // lowest after_slot among them: usually nothing changed, whatever the number of watchers.
  struct Group {
    std::vector<Parked> watches;
    paxos::Slot lowest_after = 0;
  };
  // True if `tag` was answered (a change, or an error).
  bool TryAnswer(ClientTag tag, const net::WatchRequest& request);
  void AnswerParked();
  void Refresh();
  void Count();

  const std::unique_ptr<StateMachine> machine_;
  const Watchable* const watchable_;  // machine_ as a Watchable, or null
  const size_t watches_max_;
  const Send send_;
  const std::string tick_command_;
  std::map<std::string, Group> parked_;                             // by query; applying thread
  size_t parked_total_ = 0;                                         // applying thread
  Clock::time_point earliest_deadline_ = Clock::time_point::max();  // of every parked watch
  std::atomic<size_t> parked_count_{0};
  std::atomic<uint64_t> next_deadline_ms_{0};
};

}  // namespace ballot

#endif  // BALLOT_NET_WATCH_HUB_H_
