#include "paxos/status.h"

namespace ballot {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case StatusCode::kNotLeader:
      return "NOT_LEADER";
    case StatusCode::kOverloaded:
      return "OVERLOADED";
    case StatusCode::kIoError:
      return "IO_ERROR";
    case StatusCode::kCorruption:
      return "CORRUPTION";
    case StatusCode::kNoSpace:
      return "NO_SPACE";
    case StatusCode::kNotFound:
      return "NOT_FOUND";
    case StatusCode::kTimeout:
      return "TIMEOUT";
    case StatusCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case StatusCode::kAborted:
      return "ABORTED";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

}  // namespace ballot
