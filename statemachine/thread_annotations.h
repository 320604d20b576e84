// Lock annotations that clang checks at compile time (-Wthread-safety), and the small Mutex,
// MutexLock and CondVar that carry them (std::mutex in libstdc++ has no annotations, so clang
// cannot follow it). On GCC the macros expand to nothing and the classes are thin wrappers.
//
//   class Counter {
//    public:
//     void Add() { MutexLock lock(&mu_); ++n_; }
//    private:
//     void AddLocked() REQUIRES(mu_) { ++n_; }  // callers must hold mu_
//     Mutex mu_;
//     int n_ GUARDED_BY(mu_) = 0;               // touching n_ without mu_ fails the clang build
//   };
//
// Header-only. It lives in statemachine/ because every library with threads (store, the server,
// the client) sees it, and state machines that keep their own threads may use it too; paxos/ is
// single-threaded and may not include it (tests/paxos core_purity_test).
#ifndef BALLOT_STATEMACHINE_THREAD_ANNOTATIONS_H_
#define BALLOT_STATEMACHINE_THREAD_ANNOTATIONS_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define BALLOT_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define BALLOT_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) BALLOT_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY BALLOT_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) BALLOT_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) BALLOT_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) BALLOT_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) BALLOT_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) BALLOT_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) BALLOT_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) BALLOT_THREAD_ANNOTATION(assert_capability(x))
#define NO_THREAD_SAFETY_ANALYSIS BALLOT_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace ballot {

class CondVar;

// A std::mutex that clang's analysis can follow.
class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex for its scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A condition variable for a Mutex. Waits may wake spuriously: wait in a loop on the condition,
// which the analysis then checks is read under the mutex.
class CondVar {
 public:
  // Releases *mu while waiting; holds it again on return.
  void Wait(Mutex* mu) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();  // still held, by the caller
  }
  // As Wait(), but returns false once `deadline` has passed.
  bool WaitUntil(Mutex* mu, std::chrono::steady_clock::time_point deadline) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool woken = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return woken;
  }
  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace ballot

#endif  // BALLOT_STATEMACHINE_THREAD_ANNOTATIONS_H_
