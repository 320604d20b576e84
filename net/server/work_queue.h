// WorkQueue: a blocking FIFO between two runtime threads. Pop() waits for work or Close().
// Producers never block: bounds are enforced by the caller (see ServerOptions), which is where the
// right answer (Overloaded) is known.
#ifndef BALLOT_NET_SERVER_WORK_QUEUE_H_
#define BALLOT_NET_SERVER_WORK_QUEUE_H_

#include <chrono>
#include <deque>
#include <optional>
#include <utility>

#include "statemachine/thread_annotations.h"

namespace ballot {

template <typename T>
class WorkQueue {
 public:
  void Push(T item) {
    {
      MutexLock lock(&mu_);
      items_.push_back(std::move(item));
    }
    cv_.NotifyOne();
  }

  // The next item, or nullopt once the queue is closed and drained.
  std::optional<T> Pop() {
    MutexLock lock(&mu_);
    while (!closed_ && items_.empty()) cv_.Wait(&mu_);
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    return item;
  }

  // Waits up to `timeout` for Close(); true if closed. Used to pause between retries.
  template <typename Duration>
  bool WaitClosed(Duration timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    MutexLock lock(&mu_);
    while (!closed_ && cv_.WaitUntil(&mu_, deadline)) {
    }
    return closed_;
  }

  void Close() {
    {
      MutexLock lock(&mu_);
      closed_ = true;
    }
    cv_.NotifyAll();
  }

 private:
  Mutex mu_;
  CondVar cv_;
  std::deque<T> items_ GUARDED_BY(mu_);
  bool closed_ GUARDED_BY(mu_) = false;
};

}  // namespace ballot

#endif  // BALLOT_NET_SERVER_WORK_QUEUE_H_
