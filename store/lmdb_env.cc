#include "store/lmdb_env.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "store/record_codec.h"
#include "store/status_macros.h"

namespace ballot::store {

bool IsNoSpaceError(int rc) {
  return rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT || rc == EFBIG;
}

namespace {

StatusCode CodeForMdb(int rc) {
  if (IsNoSpaceError(rc)) return StatusCode::kNoSpace;
  switch (rc) {
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
      return StatusCode::kCorruption;
    case ENOENT:
      return StatusCode::kNotFound;
    case MDB_READERS_FULL:
      return StatusCode::kOverloaded;
    case MDB_TXN_FULL:
    case MDB_BAD_VALSIZE:
      return StatusCode::kInvalidArgument;
    default:
      return StatusCode::kIoError;
  }
}

}  // namespace

Status MdbStatus(int rc, std::string_view what) {
  return Status(CodeForMdb(rc), std::string(what) + ": " + mdb_strerror(rc));
}

Status CheckDurableEnvFlags(unsigned env_flags) {
  std::string bad;
  if (env_flags & MDB_NOSYNC) bad += " MDB_NOSYNC";
  if (env_flags & MDB_NOMETASYNC) bad += " MDB_NOMETASYNC";
  if (env_flags & MDB_MAPASYNC) bad += " MDB_MAPASYNC";
  if (bad.empty()) return Status::Ok();
  return Status(StatusCode::kFailedPrecondition,
                "LMDB environment has asynchronous-sync flags" + bad +
                    "; what it stores must be committed with a real sync");
}

// --- DirectoryLock ---

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) close(fd_);  // releases the flock
}

Status DirectoryLock::Lock(const std::string& dir, std::string_view file_name,
                           std::string_view what) {
  CHECK_LT(fd_, 0) << "DirectoryLock::Lock called twice";
  const std::string lock_path = dir + "/" + std::string(file_name);
  fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kStoreFileMode);
  if (fd_ < 0) {
    return Status(StatusCode::kIoError, "cannot open " + lock_path + ": " + strerror(errno));
  }
  if (flock(fd_, LOCK_EX | LOCK_NB) == 0) return Status::Ok();
  const int err = errno;
  close(fd_);
  fd_ = -1;
  if (err == EWOULDBLOCK) {
    return Status(StatusCode::kFailedPrecondition, std::string(what) + " " + dir +
                                                       " is in use by another process (" +
                                                       lock_path + " is locked)");
  }
  return Status(StatusCode::kIoError, "cannot lock " + lock_path + ": " + strerror(err));
}

// --- LmdbEnv ---

LmdbEnv::~LmdbEnv() {
  if (env_ != nullptr) mdb_env_close(env_);
}

Status LmdbEnv::Open(const std::string& dir, const LmdbEnvOptions& options, int* dead_readers) {
  CHECK(env_ == nullptr) << "LmdbEnv::Open called twice";
  int rc = mdb_env_create(&env_);
  if (rc != MDB_SUCCESS) {
    env_ = nullptr;
    return MdbStatus(rc, "mdb_env_create");
  }
  if ((rc = mdb_env_set_maxdbs(env_, options.dbs_max)) != MDB_SUCCESS ||
      (options.readers_max != 0 &&
       (rc = mdb_env_set_maxreaders(env_, options.readers_max)) != MDB_SUCCESS) ||
      (options.map_bytes != 0 &&
       (rc = mdb_env_set_mapsize(env_, options.map_bytes)) != MDB_SUCCESS)) {
    return MdbStatus(rc, "configuring the LMDB environment");
  }
  if ((rc = mdb_env_open(env_, dir.c_str(), options.flags, kStoreFileMode)) != MDB_SUCCESS) {
    return MdbStatus(rc, "mdb_env_open");
  }
  unsigned got_flags = 0;
  if ((rc = mdb_env_get_flags(env_, &got_flags)) != MDB_SUCCESS) {
    return MdbStatus(rc, "mdb_env_get_flags");
  }
  STORE_RETURN_IF_ERROR(CheckDurableEnvFlags(got_flags));
  int dead = 0;
  if ((rc = mdb_reader_check(env_, &dead)) != MDB_SUCCESS) {
    return MdbStatus(rc, "mdb_reader_check");
  }
  if (dead_readers != nullptr) *dead_readers = dead;
  return Status::Ok();
}

size_t LmdbEnv::MapBytes() const {
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  return info.me_mapsize;
}

size_t LmdbEnv::UsedBytes() const {
  MDB_envinfo info;
  MDB_stat stat;
  mdb_env_info(env_, &info);
  mdb_env_stat(env_, &stat);
  return (info.me_last_pgno + 1) * stat.ms_psize;
}

// --- Records ---

Status GetRecord(MDB_txn* txn, MDB_dbi dbi, std::string_view key, uint8_t kind,
                 std::string_view kind_name, std::string_view scope, std::string_view what,
                 std::string_view* payload, bool* found) {
  MDB_val k = MdbVal(key);
  MDB_val v;
  *found = false;
  const int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return Status::Ok();
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "reading " + std::string(what));
  STORE_RETURN_IF_ERROR(OpenRecordBytes(kind, kind_name, scope, MdbView(v), what, payload));
  *found = true;
  return Status::Ok();
}

int PutRecord(MDB_txn* txn, MDB_dbi dbi, std::string_view key, uint8_t kind, std::string_view scope,
              std::string_view payload, std::string* scratch) {
  scratch->clear();
  SealRecordBytes(kind, scope, payload, scratch);
  MDB_val k = MdbVal(key);
  MDB_val v = MdbVal(*scratch);
  return mdb_put(txn, dbi, &k, &v, 0);
}

}  // namespace ballot::store
