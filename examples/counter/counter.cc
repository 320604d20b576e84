#include "counter.h"

#include <charconv>
#include <system_error>

namespace {

bool ParseInt(std::string_view text, int64_t* out) {
  const char* last = text.data() + text.size();
  const auto [end, ec] = std::from_chars(text.data(), last, *out);
  return !text.empty() && ec == std::errc() && end == last;
}

ballot::Outcome Invalid(std::string message) {
  ballot::Outcome o;
  o.code = ballot::StatusCode::kInvalidArgument;
  o.message = std::move(message);
  return o;
}

}  // namespace

void Counter::Apply(std::span<const ballot::AppliedCommand> batch,
                    std::vector<ballot::Outcome>* outcomes) {
  for (const ballot::AppliedCommand& command : batch) {
    int64_t n = 0;
    if (command.payload.substr(0, 4) != "add " || !ParseInt(command.payload.substr(4), &n)) {
      outcomes->push_back(Invalid("want \"add <n>\""));
      continue;
    }
    int64_t sum = 0;
    if (__builtin_add_overflow(value_, n, &sum)) {  // refused the same way on every replica
      outcomes->push_back(Invalid("the counter would overflow"));
      continue;
    }
    value_ = sum;
    ballot::Outcome o;
    o.data = std::to_string(value_);
    outcomes->push_back(std::move(o));
  }
}

ballot::Outcome Counter::Query(std::string_view request) const {
  if (request != "get") return Invalid("want \"get\"");
  ballot::Outcome o;
  o.data = std::to_string(value_);
  return o;
}

std::string Counter::Snapshot() const { return std::to_string(value_); }

ballot::Status Counter::Restore(std::string_view snapshot) {
  int64_t v = 0;
  if (!ParseInt(snapshot, &v)) {
    return ballot::Status(ballot::StatusCode::kCorruption, "counter snapshot is not a number");
  }
  value_ = v;
  return ballot::Status::Ok();
}
