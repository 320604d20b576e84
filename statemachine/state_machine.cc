#include "statemachine/state_machine.h"

#include <glog/logging.h>

#include <algorithm>
#include <utility>

namespace ballot {

namespace {

// The default view: a copy of Snapshot() taken on the apply thread (so Apply waits while it is
// made), written later in bounded pieces.
class CopiedSnapshotView final : public SnapshotView {
 public:
  explicit CopiedSnapshotView(std::string bytes) : bytes_(std::move(bytes)) {}

  Status WriteTo(SnapshotWriter* out) override {
    std::string_view rest = bytes_;
    while (!rest.empty()) {
      const size_t n = std::min(rest.size(), kSnapshotChunkBytesMax);
      Status status = out->Write(rest.substr(0, n));
      if (!status.ok()) return status;
      rest.remove_prefix(n);
    }
    return Status::Ok();
  }

 private:
  const std::string bytes_;
};

}  // namespace

std::string StateMachine::Snapshot() const {
  LOG(FATAL) << "StateMachine: override Snapshot() or TakeSnapshotView()";
}

Status StateMachine::Restore(std::string_view snapshot) {
  (void)snapshot;
  return Status(StatusCode::kFailedPrecondition,
                "StateMachine: override Restore() or RestoreFrom()");
}

std::unique_ptr<SnapshotView> StateMachine::TakeSnapshotView() {
  return std::make_unique<CopiedSnapshotView>(Snapshot());
}

Status StateMachine::RestoreFrom(SnapshotReader* in) {
  // The simple pair's contract is "a few megabytes", so holding the whole stream is the
  // machine's own choice; it grows only as bytes actually arrive.
  std::string all;
  std::string piece;
  while (true) {
    Status status = in->Read(kSnapshotChunkBytesMax, &piece);
    if (!status.ok()) return status;
    if (piece.empty()) break;
    all.append(piece);
  }
  return Restore(all);
}

}  // namespace ballot
