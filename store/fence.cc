#include "store/fence.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <lmdb.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "store/checksum.h"
#include "store/lmdb_txn.h"
#include "store/sync_dir.h"
#include "store/status_macros.h"

namespace ballot::fence {
namespace {

using store::SyncDirectory;

constexpr char kMetaDb[] = "meta";
constexpr char kTokensDb[] = "tokens";
constexpr char kDataDb[] = "data";
constexpr std::string_view kFormatKey = "format";
constexpr char kLockFileName[] = "fence.lock";
constexpr uint32_t kFormatVersion = 1;
constexpr unsigned kDbsMax = 3;
constexpr size_t kMapBytesMin = 64 * 1024;
// LMDB's compiled-in key limit is 511 bytes; keys stay well below it.
constexpr size_t kKeyBytesLimit = 480;
// A write that keeps filling the map grows it at most this many times before giving up.
constexpr int kWriteAttemptsMax = 8;

enum class Kind : uint8_t { kFormat = 1, kToken = 2, kValue = 3 };
constexpr size_t kHeaderBytes = 5;  // crc32c + kind

MDB_val Val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view View(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

Status MdbStatus(int rc, std::string_view what) {
  StatusCode code = StatusCode::kIoError;
  if (rc == MDB_MAP_FULL) code = StatusCode::kNoSpace;
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID ||
      rc == MDB_VERSION_MISMATCH) {
    code = StatusCode::kCorruption;
  }
  return Status(code, std::string(what) + ": " + mdb_strerror(rc));
}

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t GetLe(std::string_view bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    v |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
  }
  return v;
}

// The CRC binds the record to its database and key, so an intact record found in the wrong
// place is detected too.
uint32_t RecordCrc(std::string_view db, std::string_view key, Kind kind, std::string_view payload) {
  std::string head(db);
  head.push_back('\0');
  PutU32(&head, static_cast<uint32_t>(key.size()));
  uint32_t crc = store::Crc32c(head);
  crc = store::Crc32cExtend(crc, key.data(), key.size());
  const auto k = static_cast<uint8_t>(kind);
  crc = store::Crc32cExtend(crc, &k, 1);
  return store::Crc32cExtend(crc, payload.data(), payload.size());
}

std::string SealRecord(std::string_view db, std::string_view key, Kind kind,
                       std::string_view payload) {
  std::string record;
  record.reserve(kHeaderBytes + payload.size());
  PutU32(&record, RecordCrc(db, key, kind, payload));
  record.push_back(static_cast<char>(kind));
  record.append(payload);
  return record;
}

Status OpenRecord(std::string_view db, std::string_view key, Kind kind, std::string_view record,
                  std::string_view* payload) {
  const std::string what = std::string(db) + " record '" + std::string(key) + "'";
  if (record.size() < kHeaderBytes) {
    return Status(StatusCode::kCorruption, what + ": " + std::to_string(record.size()) +
                                               " bytes, shorter than a record header");
  }
  const auto stored_crc = static_cast<uint32_t>(GetLe(record.substr(0, 4)));
  const auto stored_kind = static_cast<uint8_t>(record[4]);
  *payload = record.substr(kHeaderBytes);
  if (stored_kind != static_cast<uint8_t>(kind)) {
    return Status(StatusCode::kCorruption, what + ": kind " + std::to_string(stored_kind) +
                                               ", expected " +
                                               std::to_string(static_cast<int>(kind)));
  }
  if (RecordCrc(db, key, kind, *payload) != stored_crc) {
    return Status(StatusCode::kCorruption, what + ": checksum mismatch");
  }
  return Status::Ok();
}

// *found is false (and *payload untouched) if there is no record under `key`.
Status GetRecord(MDB_txn* txn, MDB_dbi dbi, std::string_view db, std::string_view key, Kind kind,
                 std::string_view* payload, bool* found) {
  MDB_val k = Val(key);
  MDB_val v;
  *found = false;
  const int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return Status::Ok();
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "reading " + std::string(db));
  STORE_RETURN_IF_ERROR(OpenRecord(db, key, kind, View(v), payload));
  *found = true;
  return Status::Ok();
}

Status PutRecord(MDB_txn* txn, MDB_dbi dbi, std::string_view db, std::string_view key, Kind kind,
                 std::string_view payload) {
  const std::string record = SealRecord(db, key, kind, payload);
  MDB_val k = Val(key);
  MDB_val v = Val(record);
  const int rc = mdb_put(txn, dbi, &k, &v, 0);
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "writing " + std::string(db));
  return Status::Ok();
}

// *highest = 0 if the resource has no token yet.
Status ReadToken(MDB_txn* txn, MDB_dbi dbi, std::string_view resource, uint64_t* highest) {
  std::string_view payload;
  bool found = false;
  STORE_RETURN_IF_ERROR(GetRecord(txn, dbi, kTokensDb, resource, Kind::kToken, &payload, &found));
  *highest = 0;
  if (!found) return Status::Ok();
  if (payload.size() != 8 || GetLe(payload) == 0) {
    return Status(StatusCode::kCorruption,
                  "tokens record '" + std::string(resource) + "': not a non-zero 8-byte token");
  }
  *highest = GetLe(payload);
  return Status::Ok();
}

using Txn = store::LmdbTxn;

}  // namespace

// --- FenceGuard ---

Status FenceGuard::Check(std::string_view resource, uint64_t token, uint64_t highest) {
  if (token >= highest) return Status::Ok();
  return Status(StatusCode::kAborted, "stale token " + std::to_string(token) + " for resource " +
                                          std::string(resource) + ": highest seen is " +
                                          std::to_string(highest));
}

Status FenceGuard::CheckArguments(std::string_view resource, uint64_t token) {
  if (resource.empty() || resource.size() > kResourceBytesMax) {
    return Status(StatusCode::kInvalidArgument, "resource is " + std::to_string(resource.size()) +
                                                    " bytes, must be 1.." +
                                                    std::to_string(kResourceBytesMax));
  }
  if (token == 0) return Status(StatusCode::kInvalidArgument, "token 0 is not a token");
  return Status::Ok();
}

FenceGuard::FenceGuard(size_t resources_max) : resources_max_(resources_max) {
  CHECK_GE(resources_max_, 1u);
}

Status FenceGuard::Admit(std::string_view resource, uint64_t token) {
  STORE_RETURN_IF_ERROR(CheckArguments(resource, token));
  auto it = highest_.find(resource);
  if (it == highest_.end()) {
    if (highest_.size() >= resources_max_) {
      return Status(StatusCode::kNoSpace,
                    "fence guard full (resources_max " + std::to_string(resources_max_) + ")");
    }
    highest_.emplace(std::string(resource), token);
    return Status::Ok();
  }
  STORE_RETURN_IF_ERROR(Check(resource, token, it->second));
  it->second = token;
  CHECK_GE(it->second, token);
  return Status::Ok();
}

uint64_t FenceGuard::Highest(std::string_view resource) const {
  auto it = highest_.find(resource);
  return it == highest_.end() ? 0 : it->second;
}

// --- FenceStore ---

FenceStore::FenceStore(std::string dir, FenceStoreOptions options)
    : dir_(std::move(dir)), options_(options) {}

FenceStore::~FenceStore() {
  if (env_ != nullptr) mdb_env_close(env_);
  if (lock_fd_ >= 0) close(lock_fd_);  // releases the flock
}

Result<std::unique_ptr<FenceStore>> FenceStore::Open(const std::string& dir) {
  return Open(dir, FenceStoreOptions());
}

Result<std::unique_ptr<FenceStore>> FenceStore::Open(const std::string& dir,
                                                     const FenceStoreOptions& options) {
  auto invalid = [](const std::string& m) {
    return Status(StatusCode::kInvalidArgument, "FenceStoreOptions: " + m);
  };
  if (dir.empty()) return invalid("dir must not be empty");
  if (options.key_bytes_max < 1 || options.key_bytes_max > kKeyBytesLimit) {
    return invalid("key_bytes_max must be in 1.." + std::to_string(kKeyBytesLimit));
  }
  if (options.map_bytes < kMapBytesMin) {
    return invalid("map_bytes must be at least " + std::to_string(kMapBytesMin));
  }
  if (options.map_bytes_max < options.map_bytes) return invalid("map_bytes_max < map_bytes");
  if (options.value_bytes_max > options.map_bytes_max / 4) {
    return invalid("value_bytes_max must be at most map_bytes_max / 4");
  }

  std::error_code ec;
  const bool created_dir = std::filesystem::create_directories(dir, ec);
  if (ec) return Status(StatusCode::kIoError, "cannot create " + dir + ": " + ec.message());

  std::unique_ptr<FenceStore> store(new FenceStore(dir, options));
  const std::string lock_path = dir + "/" + kLockFileName;
  store->lock_fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (store->lock_fd_ < 0) {
    return Status(StatusCode::kIoError, "cannot open " + lock_path + ": " + strerror(errno));
  }
  if (flock(store->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      return Status(StatusCode::kFailedPrecondition,
                    "fence store " + dir + " is in use (" + lock_path + " is locked)");
    }
    return Status(StatusCode::kIoError, "cannot lock " + lock_path + ": " + strerror(err));
  }
  std::lock_guard<std::mutex> lock(store->mu_);
  STORE_RETURN_IF_ERROR(store->Annotate(store->OpenEnv()));
  STORE_RETURN_IF_ERROR(store->Annotate(store->OpenDatabases()));
  if (created_dir) {
    // LMDB syncs file contents, never directory entries: make the new directory's name durable.
    const std::filesystem::path parent =
        std::filesystem::path(dir).lexically_normal().parent_path();
    STORE_RETURN_IF_ERROR(store->Annotate(SyncDirectory(parent.empty() ? "." : parent.string())));
  }
  return Result<std::unique_ptr<FenceStore>>(std::move(store));
}

Status FenceStore::Annotate(const Status& s) const {
  if (s.ok()) return s;
  return Status(s.code(), "fence store " + dir_ + ": " + s.message());
}

Status FenceStore::OpenEnv() {
  int rc = mdb_env_create(&env_);
  if (rc != MDB_SUCCESS) {
    env_ = nullptr;
    return MdbStatus(rc, "mdb_env_create");
  }
  // Setting the size before open: LMDB keeps a larger size recorded by an earlier run.
  if ((rc = mdb_env_set_maxdbs(env_, kDbsMax)) != MDB_SUCCESS ||
      (rc = mdb_env_set_mapsize(env_, options_.map_bytes)) != MDB_SUCCESS) {
    return MdbStatus(rc, "configuring the LMDB environment");
  }
  if ((rc = mdb_env_open(env_, dir_.c_str(), MDB_NOTLS, 0644)) != MDB_SUCCESS) {
    return MdbStatus(rc, "mdb_env_open");
  }
  unsigned flags = 0;
  if ((rc = mdb_env_get_flags(env_, &flags)) != MDB_SUCCESS) {
    return MdbStatus(rc, "mdb_env_get_flags");
  }
  if (flags & (MDB_NOSYNC | MDB_NOMETASYNC | MDB_MAPASYNC)) {
    return Status(StatusCode::kFailedPrecondition,
                  "LMDB environment has asynchronous-sync flags; fence records must be durable");
  }
  int dead = 0;
  if ((rc = mdb_reader_check(env_, &dead)) != MDB_SUCCESS) {
    return MdbStatus(rc, "mdb_reader_check");
  }
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  map_bytes_ = info.me_mapsize;
  return Status::Ok();
}

Status FenceStore::OpenDatabases() {
  Txn txn;
  int rc = mdb_txn_begin(env_, nullptr, 0, txn.out());
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "mdb_txn_begin");
  MDB_dbi meta = 0, tokens = 0, data = 0;
  if ((rc = mdb_dbi_open(txn.get(), kMetaDb, MDB_CREATE, &meta)) != MDB_SUCCESS ||
      (rc = mdb_dbi_open(txn.get(), kTokensDb, MDB_CREATE, &tokens)) != MDB_SUCCESS ||
      (rc = mdb_dbi_open(txn.get(), kDataDb, MDB_CREATE, &data)) != MDB_SUCCESS) {
    return MdbStatus(rc, "opening the databases");
  }
  std::string_view payload;
  bool found = false;
  STORE_RETURN_IF_ERROR(
      GetRecord(txn.get(), meta, kMetaDb, kFormatKey, Kind::kFormat, &payload, &found));
  if (found) {
    if (payload.size() != 4) {
      return Status(StatusCode::kCorruption, "meta record 'format': not a 4-byte version");
    }
    const uint64_t version = GetLe(payload);
    if (version > kFormatVersion) {
      return Status(StatusCode::kFailedPrecondition,
                    "written by a newer format (" + std::to_string(version) + ")");
    }
  } else {
    std::string version;
    PutU32(&version, kFormatVersion);
    STORE_RETURN_IF_ERROR(PutRecord(txn.get(), meta, kMetaDb, kFormatKey, Kind::kFormat, version));
  }
  if ((rc = txn.Commit()) != MDB_SUCCESS) return MdbStatus(rc, "creating the databases");
  meta_dbi_ = meta;
  tokens_dbi_ = tokens;
  data_dbi_ = data;
  // A new data.mdb: its directory entry must be durable before anything in it is acknowledged.
  if (!found) STORE_RETURN_IF_ERROR(SyncDirectory(dir_));
  return Status::Ok();
}

Status FenceStore::CheckData(std::string_view key, std::string_view value) const {
  if (key.empty() || key.size() > options_.key_bytes_max) {
    return Status(StatusCode::kInvalidArgument, "key is " + std::to_string(key.size()) +
                                                    " bytes, must be 1.." +
                                                    std::to_string(options_.key_bytes_max));
  }
  if (value.size() > options_.value_bytes_max) {
    return Status(StatusCode::kInvalidArgument, "value is " + std::to_string(value.size()) +
                                                    " bytes, value_bytes_max is " +
                                                    std::to_string(options_.value_bytes_max));
  }
  return Status::Ok();
}

Status FenceStore::GrowMap() {
  const size_t target = std::min(map_bytes_ * 2, options_.map_bytes_max);
  if (target <= map_bytes_) {
    return Status(StatusCode::kNoSpace,
                  "LMDB map full at " + std::to_string(map_bytes_) + " bytes (map_bytes_max)");
  }
  // Only called with mu_ held and no transaction open, as mdb_env_set_mapsize requires.
  const int rc = mdb_env_set_mapsize(env_, target);
  if (rc != MDB_SUCCESS) {
    fatal_ = Annotate(MdbStatus(rc, "growing the LMDB map"));
    return fatal_;
  }
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  map_bytes_ = info.me_mapsize;
  LOG(INFO) << "fence store " << dir_ << ": map grown to " << map_bytes_ << " bytes";
  return Status::Ok();
}

template <typename Body>
Status FenceStore::Transact(std::string_view what, Body body) {
  if (!fatal_.ok()) return fatal_;
  for (int attempt = 0; attempt < kWriteAttemptsMax; ++attempt) {
    Txn txn;
    int rc = mdb_txn_begin(env_, nullptr, 0, txn.out());
    if (rc != MDB_SUCCESS) return Annotate(MdbStatus(rc, "mdb_txn_begin"));
    Status s = body(txn.get());
    if (s.code() == StatusCode::kAborted) return s;  // the fencing verdict, as is
    if (s.ok()) {
      rc = txn.Commit();
      if (rc == MDB_SUCCESS) return Status::Ok();
      if (rc != MDB_MAP_FULL) {
        // The sync may have half happened: never retry it and then acknowledge.
        fatal_ = Annotate(Status(StatusCode::kIoError,
                                 std::string(what) + ": commit failed: " + mdb_strerror(rc) +
                                     "; the store refuses all further writes (restart)"));
        LOG(ERROR) << fatal_.message();
        return fatal_;
      }
      s = MdbStatus(rc, "mdb_txn_commit");
    }
    if (s.code() != StatusCode::kNoSpace) return Annotate(s);
    txn.Abort();  // before resizing: LMDB needs no open transaction for that
    STORE_RETURN_IF_ERROR(Annotate(GrowMap()));
  }
  return Annotate(Status(StatusCode::kNoSpace, std::string(what) + ": map still full after " +
                                                   std::to_string(kWriteAttemptsMax) + " growths"));
}

// Inside a write transaction: the check, and the record of the new highest token.
Status FenceStore::Fenced(MDB_txn* txn, std::string_view resource, uint64_t token) {
  uint64_t highest = 0;
  STORE_RETURN_IF_ERROR(ReadToken(txn, tokens_dbi_, resource, &highest));
  STORE_RETURN_IF_ERROR(FenceGuard::Check(resource, token, highest));
  if (token == highest) return Status::Ok();
  CHECK_GT(token, highest);
  std::string payload;
  PutU64(&payload, token);
  return PutRecord(txn, tokens_dbi_, kTokensDb, resource, Kind::kToken, payload);
}

Status FenceStore::Write(std::string_view resource, uint64_t token, std::string_view key,
                         std::string_view value) {
  STORE_RETURN_IF_ERROR(FenceGuard::CheckArguments(resource, token));
  STORE_RETURN_IF_ERROR(CheckData(key, value));
  std::lock_guard<std::mutex> lock(mu_);
  return Transact("write", [&](MDB_txn* txn) {
    STORE_RETURN_IF_ERROR(Fenced(txn, resource, token));
    return PutRecord(txn, data_dbi_, kDataDb, key, Kind::kValue, value);
  });
}

Status FenceStore::Register(std::string_view resource, uint64_t token) {
  STORE_RETURN_IF_ERROR(FenceGuard::CheckArguments(resource, token));
  std::lock_guard<std::mutex> lock(mu_);
  // An equal token changes nothing and LMDB commits the empty transaction without writing: the
  // token was made durable by the commit that first recorded it.
  return Transact("register", [&](MDB_txn* txn) { return Fenced(txn, resource, token); });
}

Result<uint64_t> FenceStore::HighestToken(std::string_view resource) {
  STORE_RETURN_IF_ERROR(FenceGuard::CheckArguments(resource, 1));
  std::lock_guard<std::mutex> lock(mu_);
  Txn txn;
  const int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, txn.out());
  if (rc != MDB_SUCCESS) return Annotate(MdbStatus(rc, "mdb_txn_begin"));
  uint64_t highest = 0;
  if (Status s = ReadToken(txn.get(), tokens_dbi_, resource, &highest); !s.ok()) {
    return Annotate(s);
  }
  return highest;
}

Result<std::optional<std::string>> FenceStore::Read(std::string_view key) {
  STORE_RETURN_IF_ERROR(CheckData(key, ""));
  std::lock_guard<std::mutex> lock(mu_);
  Txn txn;
  const int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, txn.out());
  if (rc != MDB_SUCCESS) return Annotate(MdbStatus(rc, "mdb_txn_begin"));
  std::string_view payload;
  bool found = false;
  if (Status s = GetRecord(txn.get(), data_dbi_, kDataDb, key, Kind::kValue, &payload, &found);
      !s.ok()) {
    return Annotate(s);
  }
  if (!found) return std::optional<std::string>();
  return std::optional<std::string>(std::string(payload));
}

}  // namespace ballot::fence
