#include "store/file_snapshot_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <glog/logging.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "store/snapshot_format.h"
#include "store/status_macros.h"
#include "store/sync_dir.h"

namespace ballot::store {

namespace {

constexpr char kSnapshotsSubdir[] = "snapshots";
constexpr char kFilePrefix[] = "snap-";
constexpr char kTmpPrefix[] = "tmp-";
constexpr char kSuffix[] = ".snap";
constexpr size_t kSlotDigits = 20;  // UINT64_MAX has 20 digits: names sort as slots do

bool IsNoSpace(int err) { return err == ENOSPC || err == EDQUOT || err == EFBIG; }

Status ErrnoStatus(const std::string& what, const std::string& path, int err) {
  return Status(IsNoSpace(err) ? StatusCode::kNoSpace : StatusCode::kIoError,
                what + " " + path + ": " + strerror(err));
}

bool StartsWith(const std::string& s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Names of the entries of a directory, "." and ".." left out.
Status ListDirectory(const std::string& dir, std::vector<std::string>* names) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus("opendir", dir, errno);
  errno = 0;
  while (dirent* entry = readdir(d)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names->push_back(name);
  }
  const int err = errno;
  closedir(d);
  if (err != 0) return ErrnoStatus("readdir", dir, err);
  return Status::Ok();
}

// Reads a file sequentially from its start; short only at the end of the file.
class FdInput final : public RawSnapshotInput {
 public:
  FdInput(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  Status ReadRaw(size_t bytes, std::string* out) override {
    out->resize(bytes);
    size_t done = 0;
    while (done < bytes) {
      const ssize_t n = pread(fd_, out->data() + done, bytes - done, offset_);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus("read", path_, errno);
      if (n == 0) break;
      done += static_cast<size_t>(n);
      offset_ += static_cast<uint64_t>(n);
    }
    out->resize(done);
    return Status::Ok();
  }
  uint64_t offset() const { return offset_; }

 private:
  const int fd_;
  const std::string path_;
  uint64_t offset_ = 0;
};

// Owns the open file behind a verifying reader.
class FileSnapshotReader final : public SnapshotReader {
 public:
  FileSnapshotReader(int fd, const std::string& path)
      : fd_(fd), input_(fd, path), decoder_(path, &input_) {}
  ~FileSnapshotReader() override { close(fd_); }
  FileSnapshotReader(const FileSnapshotReader&) = delete;
  FileSnapshotReader& operator=(const FileSnapshotReader&) = delete;

  Status Start(paxos::Slot applied_below) { return decoder_.Start(applied_below); }
  Status Read(size_t bytes_max, std::string* out) override { return decoder_.Read(bytes_max, out); }
  SnapshotDecoder& decoder() { return decoder_; }
  uint64_t raw_offset() const { return input_.offset(); }

 private:
  const int fd_;
  FdInput input_;
  SnapshotDecoder decoder_;
};

Result<std::unique_ptr<FileSnapshotReader>> OpenReader(const std::string& path,
                                                       paxos::Slot applied_below) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return Status(StatusCode::kNotFound, "no snapshot " + path);
  if (fd < 0) return ErrnoStatus("open", path, errno);
  auto reader = std::make_unique<FileSnapshotReader>(fd, path);
  STORE_RETURN_IF_ERROR(reader->Start(applied_below));
  return reader;
}

// Writes a tmp file; Commit() makes it the snapshot. `raw` sinks take bytes already framed
// (from a peer) and verify them all before the rename; logical sinks frame what they are given.
class FileSink final : public SnapshotSink, private RawSnapshotOutput {
 public:
  FileSink(int fd, std::string tmp_path, std::string final_path, std::string dir,
           paxos::Slot applied_below, bool raw)
      : fd_(fd),
        tmp_path_(std::move(tmp_path)),
        final_path_(std::move(final_path)),
        dir_(std::move(dir)),
        applied_below_(applied_below),
        raw_(raw),
        encoder_(applied_below, this) {}
  ~FileSink() override {
    if (fd_ >= 0) close(fd_);
    // Best effort: a tmp file left behind is deleted by the next OpenDir().
    if (!committed_) unlink(tmp_path_.c_str());
  }
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  Status Write(std::string_view bytes) override {
    CHECK(!committed_) << "snapshot sink written after Commit";
    if (!error_.ok()) return error_;
    error_ = raw_ ? Append(bytes) : encoder_.Write(bytes);
    return error_;
  }

  Status Commit() override {
    CHECK(!committed_ && !finished_) << "snapshot sink committed twice";
    finished_ = true;
    if (error_.ok() && !raw_) error_ = encoder_.Finish();
    if (error_.ok() && raw_) error_ = VerifyTmp();
    if (error_.ok()) error_ = Sync();
    if (!error_.ok()) return error_;
    if (rename(tmp_path_.c_str(), final_path_.c_str()) != 0) {
      return error_ = ErrnoStatus("rename " + tmp_path_ + " to", final_path_, errno);
    }
    committed_ = true;
    // The rename is visible now but not yet durable; a failure here is still reported.
    return SyncDirectory(dir_);
  }

 private:
  Status Append(std::string_view raw) override {
    while (!raw.empty()) {
      const ssize_t n = write(fd_, raw.data(), raw.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus("write", tmp_path_, errno);
      raw.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }

  Status VerifyTmp() {
    FdInput input(fd_, tmp_path_);
    SnapshotDecoder decoder(tmp_path_ + " (received)", &input);
    STORE_RETURN_IF_ERROR(decoder.Start(applied_below_));
    return decoder.VerifyRest();
  }

  Status Sync() {
    const int rc = fsync(fd_);
    const int err = errno;
    close(fd_);
    fd_ = -1;
    // Never retried: after a failed fsync the page cache may no longer hold what was written.
    if (rc != 0) return Status(StatusCode::kIoError, "fsync " + tmp_path_ + ": " + strerror(err));
    return Status::Ok();
  }

  int fd_;
  const std::string tmp_path_;
  const std::string final_path_;
  const std::string dir_;
  const paxos::Slot applied_below_;
  const bool raw_;
  SnapshotEncoder encoder_;
  Status error_;  // sticky: a sink that failed once is dead
  bool finished_ = false;
  bool committed_ = false;
};

}  // namespace

std::string FileSnapshotStore::SnapshotsDir(const std::string& dir) {
  return dir + "/" + kSnapshotsSubdir;
}

std::string FileSnapshotStore::FileName(paxos::Slot applied_below) {
  char digits[kSlotDigits + 1];
  snprintf(digits, sizeof(digits), "%020llu", static_cast<unsigned long long>(applied_below));
  return std::string(kFilePrefix) + digits + kSuffix;
}

paxos::Slot FileSnapshotStore::ParseFileName(const std::string& name) {
  const size_t prefix = sizeof(kFilePrefix) - 1;
  const size_t suffix = sizeof(kSuffix) - 1;
  if (name.size() != prefix + kSlotDigits + suffix || !StartsWith(name, kFilePrefix) ||
      !EndsWith(name, kSuffix)) {
    return 0;
  }
  paxos::Slot slot = 0;
  for (size_t i = prefix; i < prefix + kSlotDigits; i++) {
    if (name[i] < '0' || name[i] > '9') return 0;
    const paxos::Slot digit = static_cast<paxos::Slot>(name[i] - '0');
    if (slot > (UINT64_MAX - digit) / 10) return 0;
    slot = slot * 10 + digit;
  }
  return slot;
}

FileSnapshotStore::FileSnapshotStore(std::string snapshots_dir)
    : snapshots_dir_(std::move(snapshots_dir)) {}

std::string FileSnapshotStore::PathOf(paxos::Slot applied_below) const {
  return snapshots_dir_ + "/" + FileName(applied_below);
}

Result<std::unique_ptr<FileSnapshotStore>> FileSnapshotStore::OpenDir(const std::string& dir) {
  const std::string snapshots = SnapshotsDir(dir);
  if (mkdir(snapshots.c_str(), 0755) == 0) {
    STORE_RETURN_IF_ERROR(SyncDirectory(dir));  // the new directory's entry must survive
  } else if (errno != EEXIST) {
    return ErrnoStatus("mkdir", snapshots, errno);
  }
  std::vector<std::string> names;
  STORE_RETURN_IF_ERROR(ListDirectory(snapshots, &names));
  bool deleted = false;
  for (const std::string& name : names) {
    if (!StartsWith(name, kTmpPrefix)) continue;
    const std::string path = snapshots + "/" + name;
    if (unlink(path.c_str()) != 0) return ErrnoStatus("unlink", path, errno);
    LOG(INFO) << "deleted an unfinished snapshot left by a crash: " << path;
    deleted = true;
  }
  if (deleted) STORE_RETURN_IF_ERROR(SyncDirectory(snapshots));
  return std::unique_ptr<FileSnapshotStore>(new FileSnapshotStore(snapshots));
}

Result<std::unique_ptr<SnapshotSink>> FileSnapshotStore::Create(paxos::Slot applied_below) {
  CHECK_GT(applied_below, 0u);
  const std::string tmp = snapshots_dir_ + "/" + kTmpPrefix + std::to_string(applied_below) + "-" +
                          std::to_string(next_tmp_id_.fetch_add(1)) + kSuffix;
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("create", tmp, errno);
  return std::unique_ptr<SnapshotSink>(std::make_unique<FileSink>(
      fd, tmp, PathOf(applied_below), snapshots_dir_, applied_below, /*raw=*/false));
}

Result<std::unique_ptr<SnapshotSink>> FileSnapshotStore::CreateRaw(paxos::Slot applied_below) {
  CHECK_GT(applied_below, 0u);
  const std::string tmp = snapshots_dir_ + "/" + kTmpPrefix + std::to_string(applied_below) + "-" +
                          std::to_string(next_tmp_id_.fetch_add(1)) + kSuffix;
  // O_RDWR: Commit reads the received bytes back to verify them.
  const int fd = open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("create", tmp, errno);
  return std::unique_ptr<SnapshotSink>(std::make_unique<FileSink>(
      fd, tmp, PathOf(applied_below), snapshots_dir_, applied_below, /*raw=*/true));
}

Result<std::vector<SnapshotInfo>> FileSnapshotStore::List() {
  std::vector<std::string> names;
  STORE_RETURN_IF_ERROR(ListDirectory(snapshots_dir_, &names));
  std::vector<SnapshotInfo> infos;
  for (const std::string& name : names) {
    const paxos::Slot slot = ParseFileName(name);
    if (slot == 0) continue;
    const std::string path = snapshots_dir_ + "/" + name;
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;  // deleted since the listing
      return ErrnoStatus("stat", path, errno);
    }
    infos.push_back(SnapshotInfo{slot, static_cast<uint64_t>(st.st_size)});
  }
  std::sort(infos.begin(), infos.end(), [](const SnapshotInfo& a, const SnapshotInfo& b) {
    return a.applied_below > b.applied_below;
  });
  return infos;
}

Result<std::unique_ptr<SnapshotReader>> FileSnapshotStore::Open(paxos::Slot applied_below) {
  Result<std::unique_ptr<FileSnapshotReader>> reader =
      OpenReader(PathOf(applied_below), applied_below);
  if (!reader.ok()) return reader.status();
  return std::unique_ptr<SnapshotReader>(std::move(reader).value());
}

Status FileSnapshotStore::ReadRaw(paxos::Slot applied_below, uint64_t offset, size_t bytes_max,
                                  std::string* out) {
  out->clear();
  const std::string path = PathOf(applied_below);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return Status(StatusCode::kNotFound, "no snapshot " + path);
  if (fd < 0) return ErrnoStatus("open", path, errno);
  out->resize(bytes_max);
  size_t done = 0;
  Status status;
  while (done < bytes_max) {
    const ssize_t n = pread(fd, out->data() + done, bytes_max - done, offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = ErrnoStatus("read", path, errno);
      break;
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  close(fd);
  out->resize(status.ok() ? done : 0);
  return status;
}

Status FileSnapshotStore::DeleteBelow(paxos::Slot applied_below) {
  std::vector<std::string> names;
  STORE_RETURN_IF_ERROR(ListDirectory(snapshots_dir_, &names));
  bool deleted = false;
  for (const std::string& name : names) {
    const paxos::Slot slot = ParseFileName(name);
    if (slot == 0 || slot >= applied_below) continue;
    const std::string path = snapshots_dir_ + "/" + name;
    if (unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("unlink", path, errno);
    deleted = true;
  }
  // Not required for safety (an older snapshot coming back after a crash is harmless), but it
  // makes the space accounting after DeleteBelow hold across a crash too.
  if (deleted) STORE_RETURN_IF_ERROR(SyncDirectory(snapshots_dir_));
  return Status::Ok();
}

Status VerifySnapshotFile(const std::string& path, paxos::Slot* applied_below,
                          uint64_t* logical_bytes, uint64_t* raw_bytes) {
  *applied_below = 0;
  *logical_bytes = 0;
  *raw_bytes = 0;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus("stat", path, errno);
  *raw_bytes = static_cast<uint64_t>(st.st_size);
  Result<std::unique_ptr<FileSnapshotReader>> reader = OpenReader(path, /*applied_below=*/0);
  if (!reader.ok()) return reader.status();
  SnapshotDecoder& decoder = reader.value()->decoder();
  *applied_below = decoder.applied_below();
  const Status status = decoder.VerifyRest();
  *logical_bytes = decoder.logical_bytes();
  if (!status.ok()) return status;
  const paxos::Slot named =
      FileSnapshotStore::ParseFileName(path.substr(path.find_last_of('/') + 1));
  if (named != 0 && named != *applied_below) {
    return Status(StatusCode::kCorruption, "snapshot " + path + " records applied_below " +
                                               std::to_string(*applied_below) + ", its name says " +
                                               std::to_string(named));
  }
  return Status::Ok();
}

}  // namespace ballot::store
