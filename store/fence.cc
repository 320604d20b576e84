#include "store/fence.h"

#include <glog/logging.h>
#include <lmdb.h>

#include <algorithm>
#include <filesystem>
#include <utility>

#include "statemachine/byte_codec.h"
#include "store/lmdb_env.h"
#include "store/record_codec.h"
#include "store/status_macros.h"
#include "store/sync_dir.h"

namespace ballot::fence {
namespace {

using store::LmdbTxn;
using store::MdbStatus;
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
// The map grows by this factor each time, up to map_bytes_max.
constexpr size_t kMapGrowthFactor = 2;
// value_bytes_max may be at most map_bytes_max / this, so that one value always fits.
constexpr size_t kValuesPerMapMin = 4;

enum class Kind : uint8_t { kFormat = 1, kToken = 2, kValue = 3 };
const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kFormat:
      return "format";
    case Kind::kToken:
      return "token";
    case Kind::kValue:
      return "value";
  }
  return "unknown";
}

// The checksum binds the record to its database and key, so an intact record found in the wrong
// place is detected too: the scope is the database's name, a NUL, the key's length (u32 LE) and
// the key (store/record_codec.h frames the record).
std::string Scope(std::string_view db, std::string_view key) {
  std::string scope(db);
  scope.push_back('\0');
  AppendLe32(static_cast<uint32_t>(key.size()), &scope);
  scope.append(key);
  return scope;
}

// *found is false (and *payload untouched) if there is no record under `key`.
Status GetRecord(MDB_txn* txn, MDB_dbi dbi, std::string_view db, std::string_view key, Kind kind,
                 std::string_view* payload, bool* found) {
  const std::string what = std::string(db) + " record '" + std::string(key) + "'";
  return store::GetRecord(txn, dbi, key, static_cast<uint8_t>(kind), KindName(kind), Scope(db, key),
                          what, payload, found);
}

Status PutRecord(MDB_txn* txn, MDB_dbi dbi, std::string_view db, std::string_view key, Kind kind,
                 std::string_view payload) {
  std::string record;
  const int rc =
      store::PutRecord(txn, dbi, key, static_cast<uint8_t>(kind), Scope(db, key), payload, &record);
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
  if (payload.size() != sizeof(uint64_t) || LoadLe64(payload.data()) == 0) {
    return Status(StatusCode::kCorruption,
                  "tokens record '" + std::string(resource) + "': not a non-zero 8-byte token");
  }
  *highest = LoadLe64(payload.data());
  return Status::Ok();
}

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
  env_.reset();   // closes the environment
  lock_.reset();  // then releases the flock
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
  if (options.value_bytes_max > options.map_bytes_max / kValuesPerMapMin) {
    return invalid("value_bytes_max must be at most map_bytes_max / " +
                   std::to_string(kValuesPerMapMin));
  }

  std::error_code ec;
  const bool created_dir = std::filesystem::create_directories(dir, ec);
  if (ec) return Status(StatusCode::kIoError, "cannot create " + dir + ": " + ec.message());

  std::unique_ptr<FenceStore> store(new FenceStore(dir, options));
  store->lock_ = std::make_unique<store::DirectoryLock>();
  STORE_RETURN_IF_ERROR(store->lock_->Lock(dir, kLockFileName, "fence store"));
  MutexLock lock(&store->mu_);
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
  env_ = std::make_unique<store::LmdbEnv>();
  // LMDB keeps a larger map size recorded by an earlier run.
  STORE_RETURN_IF_ERROR(
      env_->Open(dir_,
                 store::LmdbEnvOptions{
                     .flags = MDB_NOTLS, .dbs_max = kDbsMax, .map_bytes = options_.map_bytes},
                 nullptr));
  map_bytes_ = env_->MapBytes();
  return Status::Ok();
}

Status FenceStore::OpenDatabases() {
  LmdbTxn txn;
  int rc = mdb_txn_begin(env_->get(), nullptr, 0, txn.out());
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
    if (payload.size() != sizeof(uint32_t)) {
      return Status(StatusCode::kCorruption, "meta record 'format': not a 4-byte version");
    }
    const uint32_t version = LoadLe32(payload.data());
    if (version > kFormatVersion) {
      return Status(StatusCode::kFailedPrecondition,
                    "written by a newer format (" + std::to_string(version) + ")");
    }
  } else {
    std::string version;
    AppendLe32(kFormatVersion, &version);
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
  const size_t target = std::min(map_bytes_ * kMapGrowthFactor, options_.map_bytes_max);
  if (target <= map_bytes_) {
    return Status(StatusCode::kNoSpace,
                  "LMDB map full at " + std::to_string(map_bytes_) + " bytes (map_bytes_max)");
  }
  // Only called with mu_ held and no transaction open, as mdb_env_set_mapsize requires.
  const int rc = mdb_env_set_mapsize(env_->get(), target);
  if (rc != MDB_SUCCESS) {
    fatal_ = Annotate(MdbStatus(rc, "growing the LMDB map"));
    return fatal_;
  }
  map_bytes_ = env_->MapBytes();
  LOG(INFO) << "fence store " << dir_ << ": map grown to " << map_bytes_ << " bytes";
  return Status::Ok();
}

template <typename Body>
Status FenceStore::Transact(std::string_view what, Body body) {
  if (!fatal_.ok()) return fatal_;
  for (int attempt = 0; attempt < kWriteAttemptsMax; ++attempt) {
    LmdbTxn txn;
    int rc = mdb_txn_begin(env_->get(), nullptr, 0, txn.out());
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
  AppendLe64(token, &payload);
  return PutRecord(txn, tokens_dbi_, kTokensDb, resource, Kind::kToken, payload);
}

Status FenceStore::Write(std::string_view resource, uint64_t token, std::string_view key,
                         std::string_view value) {
  STORE_RETURN_IF_ERROR(FenceGuard::CheckArguments(resource, token));
  STORE_RETURN_IF_ERROR(CheckData(key, value));
  MutexLock lock(&mu_);
  return Transact("write", [&](MDB_txn* txn) REQUIRES(mu_) {
    STORE_RETURN_IF_ERROR(Fenced(txn, resource, token));
    return PutRecord(txn, data_dbi_, kDataDb, key, Kind::kValue, value);
  });
}

Status FenceStore::Register(std::string_view resource, uint64_t token) {
  STORE_RETURN_IF_ERROR(FenceGuard::CheckArguments(resource, token));
  MutexLock lock(&mu_);
  // An equal token changes nothing and LMDB commits the empty transaction without writing: the
  // token was made durable by the commit that first recorded it.
  return Transact("register",
                  [&](MDB_txn* txn) REQUIRES(mu_) { return Fenced(txn, resource, token); });
}

Result<uint64_t> FenceStore::HighestToken(std::string_view resource) {
  STORE_RETURN_IF_ERROR(FenceGuard::CheckArguments(resource, 1));
  MutexLock lock(&mu_);
  LmdbTxn txn;
  const int rc = mdb_txn_begin(env_->get(), nullptr, MDB_RDONLY, txn.out());
  if (rc != MDB_SUCCESS) return Annotate(MdbStatus(rc, "mdb_txn_begin"));
  uint64_t highest = 0;
  if (Status s = ReadToken(txn.get(), tokens_dbi_, resource, &highest); !s.ok()) {
    return Annotate(s);
  }
  return highest;
}

Result<std::optional<std::string>> FenceStore::Read(std::string_view key) {
  STORE_RETURN_IF_ERROR(CheckData(key, ""));
  MutexLock lock(&mu_);
  LmdbTxn txn;
  const int rc = mdb_txn_begin(env_->get(), nullptr, MDB_RDONLY, txn.out());
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
