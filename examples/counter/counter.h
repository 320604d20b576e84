// A replicated counter: the StateMachine of this example.
//   command "add <n>" (n a signed 64-bit integer): adds n, answers the new value;
//   query   "get":                                answers the value.
// Values and answers are decimal text, so the client and the logs stay readable.
#ifndef COUNTER_H_
#define COUNTER_H_

#include <ballot/ballot.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

class Counter : public ballot::StateMachine {
 public:
  void Apply(std::span<const ballot::AppliedCommand> batch,
             std::vector<ballot::Outcome>* outcomes) override;
  ballot::Outcome Query(std::string_view request) const override;
  std::string Snapshot() const override;
  ballot::Status Restore(std::string_view snapshot) override;

 private:
  int64_t value_ = 0;
};

#endif  // COUNTER_H_
