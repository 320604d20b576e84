// The LMDB mechanics every LMDB user in store/ shares (LmdbStore, FenceStore): opening an
// environment and refusing one that would not sync, the exclusive lock on a data directory, the
// mapping of LMDB and errno codes to Status, transactions and cursors that clean up after
// themselves, and reading and writing checksummed records (store/record_codec.h's framing).
// Internal to store/: the only library that links LMDB.
#ifndef BALLOT_STORE_LMDB_ENV_H_
#define BALLOT_STORE_LMDB_ENV_H_

#include <lmdb.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "paxos/status.h"

namespace ballot::store {

// Permission bits of the files a store creates (data.mdb, lock.mdb, the lock file).
inline constexpr int kStoreFileMode = 0644;

inline MDB_val MdbVal(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
inline std::string_view MdbView(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

// An LMDB code or errno that means "no room": the map or the disk is full.
bool IsNoSpaceError(int rc);
// The Status for an LMDB code or errno: kNoSpace, kCorruption (a damaged file), kNotFound,
// kOverloaded (reader table full), kInvalidArgument (a transaction or value too large), else
// kIoError. The message is `what` and LMDB's text.
Status MdbStatus(int rc, std::string_view what);

// Ok unless `env_flags` (from mdb_env_get_flags) contains MDB_NOSYNC, MDB_NOMETASYNC or
// MDB_MAPASYNC, which would let a commit return before its data is durable.
Status CheckDurableEnvFlags(unsigned env_flags);

// An exclusive flock on DIR/file_name, held until this object is destroyed. A second holder,
// in this process or another, is refused with kFailedPrecondition naming `what` ("data
// directory", "fence store").
class DirectoryLock {
 public:
  DirectoryLock() = default;
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

  Status Lock(const std::string& dir, std::string_view file_name, std::string_view what);

 private:
  int fd_ = -1;
};

struct LmdbEnvOptions {
  unsigned flags = MDB_NOTLS;  // mdb_env_open flags; never an asynchronous-sync one
  unsigned dbs_max = 0;        // named databases
  unsigned readers_max = 0;    // reader table slots; 0: LMDB's default
  // Map size set before opening; 0 leaves it unset, so LMDB adopts the size the file records.
  // (A larger size recorded by an earlier run wins either way.)
  size_t map_bytes = 0;
};

// An open MDB_env, closed when this object is destroyed. Not thread-safe: its owner serializes
// what needs serializing (map resizes) and LMDB itself the rest.
class LmdbEnv {
 public:
  LmdbEnv() = default;
  ~LmdbEnv();
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;

  // Creates and opens the environment in `dir`, checks that it syncs every commit
  // (CheckDurableEnvFlags) and clears reader slots left by dead processes (*dead_readers, if
  // given, says how many). Call once.
  Status Open(const std::string& dir, const LmdbEnvOptions& options, int* dead_readers);

  MDB_env* get() const { return env_; }
  bool is_open() const { return env_ != nullptr; }
  // The current map size (mdb_env_info).
  size_t MapBytes() const;
  // Bytes up to the highest page in use (a high-water mark; freed pages are reused).
  size_t UsedBytes() const;

 private:
  MDB_env* env_ = nullptr;
};

// An LMDB transaction that is aborted when it goes out of scope unless committed.
class LmdbTxn {
 public:
  LmdbTxn() = default;
  ~LmdbTxn() { Abort(); }
  LmdbTxn(const LmdbTxn&) = delete;
  LmdbTxn& operator=(const LmdbTxn&) = delete;

  MDB_txn* get() const { return txn_; }
  MDB_txn** out() { return &txn_; }  // for mdb_txn_begin
  void Abort() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
    txn_ = nullptr;
  }
  // Returns mdb_txn_commit's result; the transaction is freed whether or not it succeeds.
  int Commit() { return mdb_txn_commit(std::exchange(txn_, nullptr)); }

 private:
  MDB_txn* txn_ = nullptr;
};

// A cursor closed when it goes out of scope (before its transaction ends, for write txns).
class LmdbCursor {
 public:
  LmdbCursor() = default;
  ~LmdbCursor() {
    if (cursor_ != nullptr) mdb_cursor_close(cursor_);
  }
  LmdbCursor(const LmdbCursor&) = delete;
  LmdbCursor& operator=(const LmdbCursor&) = delete;

  int Open(MDB_txn* txn, MDB_dbi dbi) { return mdb_cursor_open(txn, dbi, &cursor_); }
  int Get(MDB_val* key, MDB_val* value, MDB_cursor_op op) {
    return mdb_cursor_get(cursor_, key, value, op);
  }
  MDB_cursor* get() const { return cursor_; }

 private:
  MDB_cursor* cursor_ = nullptr;
};

// Checksummed records in a database (framing: store/record_codec.h SealRecordBytes). The
// checksum covers `scope` (what binds the record to its place: its key, or more), the kind and
// the payload.
//
// Reads the record under `key` into *payload (a view into the transaction's pages); *found is
// false if there is none. kCorruption naming `what` (and `kind_name`, the kind expected) if the
// record fails its checks; an LMDB
// failure is mapped by MdbStatus.
Status GetRecord(MDB_txn* txn, MDB_dbi dbi, std::string_view key, uint8_t kind,
                 std::string_view kind_name, std::string_view scope, std::string_view what,
                 std::string_view* payload, bool* found);
// Seals `payload` into *scratch and writes it under `key`; returns the LMDB code.
int PutRecord(MDB_txn* txn, MDB_dbi dbi, std::string_view key, uint8_t kind, std::string_view scope,
              std::string_view payload, std::string* scratch);

}  // namespace ballot::store

#endif  // BALLOT_STORE_LMDB_ENV_H_
