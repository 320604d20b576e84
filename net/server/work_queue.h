// WorkQueue: a blocking FIFO between two runtime threads. Pop() waits for work or Close().
// Producers never block: bounds are enforced by the caller (see ServerOptions), which is where the
// right answer (Overloaded) is known.
#ifndef BALLOT_NET_SERVER_WORK_QUEUE_H_
#define BALLOT_NET_SERVER_WORK_QUEUE_H_

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

namespace ballot {

template <typename T>
class WorkQueue {
 public:
  void Push(T item) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      items_.push_back(std::move(item));
    }
    cv_.notify_one();
  }

  // The next item, or nullopt once the queue is closed and drained.
  std::optional<T> Pop() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return closed_ || !items_.empty(); });
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    return item;
  }

  // Waits up to `timeout` for Close(); true if closed. Used to pause between retries.
  template <typename Duration>
  bool WaitClosed(Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return closed_; });
  }

  void Close() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> items_;  // guarded by mu_
  bool closed_ = false;  // guarded by mu_
};

}  // namespace ballot

#endif  // BALLOT_NET_SERVER_WORK_QUEUE_H_
