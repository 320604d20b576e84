// Expected failures are values, not exceptions: Status and Result<T>.
//
// A broken invariant is a bug and is a CHECK failure instead (glog, on in release builds).
#ifndef BALLOT_PAXOS_STATUS_H_
#define BALLOT_PAXOS_STATUS_H_

#include <glog/logging.h>

#include <optional>
#include <string>
#include <utility>

namespace ballot {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // the caller passed something malformed (bad flag, bad option, bad frame)
  kNotLeader,        // this node does not lead; retry at the hinted leader
  kOverloaded,       // a bounded queue is full; retry later
  kIoError,          // the disk or the network failed
  kCorruption,       // stored data failed its checksum or an invariant; do not serve from it
  kNoSpace,          // the disk or the LMDB map is full; nothing was written
  kNotFound,
  kTimeout,
  kFailedPrecondition,  // e.g. a data directory that belongs to another cluster or node
  kAborted,             // e.g. a command rejected deterministically at apply time
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a T or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    CHECK(!status_.ok()) << "Result built from an ok Status without a value";
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & {
    CHECK(ok()) << status_.ToString();
    return *value_;
  }
  const T& value() const& {
    CHECK(ok()) << status_.ToString();
    return *value_;
  }
  T&& value() && {
    CHECK(ok()) << status_.ToString();
    return std::move(*value_);
  }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace ballot

#endif  // BALLOT_PAXOS_STATUS_H_
