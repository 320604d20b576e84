#include "store/mem_snapshot_store.h"

#include <glog/logging.h>

#include <algorithm>
#include <utility>

#include "store/snapshot_format.h"
#include "store/status_macros.h"

namespace ballot::store {

namespace {

std::string Name(paxos::Slot applied_below) {
  return "memory snapshot " + std::to_string(applied_below);
}

class StringOutput final : public RawSnapshotOutput {
 public:
  Status Append(std::string_view raw) override {
    data_.append(raw);
    return Status::Ok();
  }
  std::string& data() { return data_; }

 private:
  std::string data_;
};

class StringInput final : public RawSnapshotInput {
 public:
  explicit StringInput(std::shared_ptr<const std::string> data) : data_(std::move(data)) {}
  Status ReadRaw(size_t bytes, std::string* out) override {
    const size_t n = std::min(bytes, data_->size() - offset_);
    out->assign(*data_, offset_, n);
    offset_ += n;
    return Status::Ok();
  }

 private:
  const std::shared_ptr<const std::string> data_;
  size_t offset_ = 0;
};

// Owns its input, which the decoder only points to.
class MemSnapshotReader final : public SnapshotReader {
 public:
  MemSnapshotReader(paxos::Slot applied_below, std::shared_ptr<const std::string> raw)
      : input_(std::move(raw)), decoder_(Name(applied_below), &input_) {}
  Status Start(paxos::Slot applied_below) { return decoder_.Start(applied_below); }
  Status Read(size_t bytes_max, std::string* out) override { return decoder_.Read(bytes_max, out); }

 private:
  StringInput input_;
  SnapshotDecoder decoder_;
};

using InstallFn = std::function<void(std::string raw)>;

class MemSnapshotSink final : public SnapshotSink {
 public:
  MemSnapshotSink(paxos::Slot applied_below, InstallFn install)
      : encoder_(applied_below, &output_), install_(std::move(install)) {}
  Status Write(std::string_view bytes) override {
    CHECK(!committed_) << "snapshot sink written after Commit";
    return encoder_.Write(bytes);
  }
  Status Commit() override {
    CHECK(!committed_) << "snapshot sink committed twice";
    committed_ = true;
    STORE_RETURN_IF_ERROR(encoder_.Finish());
    install_(std::move(output_.data()));
    return Status::Ok();
  }

 private:
  StringOutput output_;
  SnapshotEncoder encoder_;
  const InstallFn install_;
  bool committed_ = false;
};

class MemRawSnapshotSink final : public SnapshotSink {
 public:
  MemRawSnapshotSink(paxos::Slot applied_below, InstallFn install)
      : applied_below_(applied_below), install_(std::move(install)) {}
  Status Write(std::string_view bytes) override {
    CHECK(!committed_) << "snapshot sink written after Commit";
    raw_.append(bytes);
    return Status::Ok();
  }
  Status Commit() override {
    CHECK(!committed_) << "snapshot sink committed twice";
    committed_ = true;
    auto raw = std::make_shared<const std::string>(std::move(raw_));
    StringInput input(raw);
    SnapshotDecoder decoder(Name(applied_below_) + " (received)", &input);
    STORE_RETURN_IF_ERROR(decoder.Start(applied_below_));
    STORE_RETURN_IF_ERROR(decoder.VerifyRest());
    install_(*raw);
    return Status::Ok();
  }

 private:
  const paxos::Slot applied_below_;
  const InstallFn install_;
  std::string raw_;
  bool committed_ = false;
};

}  // namespace

Result<std::unique_ptr<SnapshotSink>> MemSnapshotStore::Create(paxos::Slot applied_below) {
  CHECK_GT(applied_below, 0u);
  return std::unique_ptr<SnapshotSink>(std::make_unique<MemSnapshotSink>(
      applied_below,
      [this, applied_below](std::string raw) { Install(applied_below, std::move(raw)); }));
}

Result<std::unique_ptr<SnapshotSink>> MemSnapshotStore::CreateRaw(paxos::Slot applied_below) {
  CHECK_GT(applied_below, 0u);
  return std::unique_ptr<SnapshotSink>(std::make_unique<MemRawSnapshotSink>(
      applied_below,
      [this, applied_below](std::string raw) { Install(applied_below, std::move(raw)); }));
}

void MemSnapshotStore::Install(paxos::Slot applied_below, std::string raw) {
  auto bytes = std::make_shared<const std::string>(std::move(raw));
  MutexLock lock(&mu_);
  snapshots_[applied_below] = std::move(bytes);
}

std::shared_ptr<const std::string> MemSnapshotStore::Find(paxos::Slot applied_below) {
  MutexLock lock(&mu_);
  auto it = snapshots_.find(applied_below);
  return it == snapshots_.end() ? nullptr : it->second;
}

Result<std::vector<SnapshotInfo>> MemSnapshotStore::List() {
  MutexLock lock(&mu_);
  std::vector<SnapshotInfo> infos;
  infos.reserve(snapshots_.size());
  for (auto it = snapshots_.rbegin(); it != snapshots_.rend(); ++it) {
    infos.push_back(SnapshotInfo{it->first, it->second->size()});
  }
  return infos;
}

Result<std::unique_ptr<SnapshotReader>> MemSnapshotStore::Open(paxos::Slot applied_below) {
  std::shared_ptr<const std::string> raw = Find(applied_below);
  if (raw == nullptr) return Status(StatusCode::kNotFound, "no " + Name(applied_below));
  auto reader = std::make_unique<MemSnapshotReader>(applied_below, std::move(raw));
  STORE_RETURN_IF_ERROR(reader->Start(applied_below));
  return std::unique_ptr<SnapshotReader>(std::move(reader));
}

Status MemSnapshotStore::ReadRaw(paxos::Slot applied_below, uint64_t offset, size_t bytes_max,
                                 std::string* out) {
  out->clear();
  std::shared_ptr<const std::string> raw = Find(applied_below);
  if (raw == nullptr) return Status(StatusCode::kNotFound, "no " + Name(applied_below));
  if (offset >= raw->size()) return Status::Ok();
  out->assign(*raw, offset, std::min<uint64_t>(bytes_max, raw->size() - offset));
  return Status::Ok();
}

Status MemSnapshotStore::DeleteBelow(paxos::Slot applied_below) {
  MutexLock lock(&mu_);
  snapshots_.erase(snapshots_.begin(), snapshots_.lower_bound(applied_below));
  return Status::Ok();
}

bool MemSnapshotStore::TEST_MutateRaw(paxos::Slot applied_below,
                                      const std::function<void(std::string*)>& edit) {
  MutexLock lock(&mu_);
  auto it = snapshots_.find(applied_below);
  if (it == snapshots_.end()) return false;
  std::string copy = *it->second;  // readers already open keep the old bytes
  edit(&copy);
  it->second = std::make_shared<const std::string>(std::move(copy));
  return true;
}

}  // namespace ballot::store
