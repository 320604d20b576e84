// Fuzz target: samples::SequenceGenerator::Restore (see restore_check.h for the properties).
#include <limits>

#include "statemachine/samples/sequence.h"
#include "tests/fuzz/fuzz_target.h"
#include "tests/fuzz/restore_check.h"

BALLOT_FUZZ_TARGET(sequence_restore) {
  using ballot::samples::SequenceGenerator;
  ballot::fuzz::CheckRestore(
      ballot::fuzz::AsView(data, size), [] { return std::make_unique<SequenceGenerator>(); },
      [](ballot::StateMachine& m) {
        ballot::fuzz::ApplyAll(m, 1, 0, {SequenceGenerator::EncodeNext(5)});
      },
      [](ballot::StateMachine& m) {
        auto& seq = static_cast<SequenceGenerator&>(m);
        const uint64_t next = seq.next();
        auto outcomes =
            ballot::fuzz::ApplyAll(m, 100, 0,
                                   {SequenceGenerator::EncodeNext(1),
                                    SequenceGenerator::EncodeNext(SequenceGenerator::kCountMax)});
        // Numbers are never handed out twice: next only grows, or the generator says exhausted.
        CHECK_GE(seq.next(), next);
        for (const auto& o : outcomes) {
          if (o.code != ballot::StatusCode::kOk) continue;
          auto block = SequenceGenerator::DecodeBlock(o.data);
          CHECK(block.ok());
          CHECK_GE(block.value().first, next);
        }
        CHECK(m.Query(SequenceGenerator::EncodePeek()).code == ballot::StatusCode::kOk);
      });
}
