// The resource side of fencing: remember the highest token seen per resource, refuse older ones.
//
// A token (a leader's epoch, or a LockService grant: statemachine/samples/lock.h) orders the
// holders of a role: a larger token belongs to a later holder. A resource that keeps the highest
// token it has seen for itself, and refuses any request carrying a smaller one, cannot be written
// by a holder that was replaced, however long that holder stalled. Equal tokens are accepted: one
// holder writes many times. See docs/fencing.md for what this does and does not guarantee.
//
//   FenceGuard  the rule, in memory, with no storage (the simulator reuses it).
//   FenceStore  the rule made durable: a small LMDB key-value store whose every write checks the
//               token and records it in the same durable transaction as the data it protects.
//
// Argument bounds (both classes): a resource is 1..kResourceBytesMax bytes; token 0 means "none"
// and is never a valid token. Violations are kInvalidArgument and change nothing.
#ifndef BALLOT_STORE_FENCE_H_
#define BALLOT_STORE_FENCE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "paxos/status.h"
#include "statemachine/thread_annotations.h"

struct MDB_txn;  // lmdb.h; only store/ links LMDB.

namespace ballot::store {
class DirectoryLock;  // store/lmdb_env.h
class LmdbEnv;
}  // namespace ballot::store

namespace ballot::fence {

inline constexpr size_t kResourceBytesMax = 256;

// The fencing rule without storage. Not thread-safe; deterministic (std::map).
class FenceGuard {
 public:
  // The rule itself, pure: Ok if token >= highest (the highest token seen so far for the
  // resource, 0 if none), else kAborted "stale token T for resource R: highest seen is H".
  static Status Check(std::string_view resource, uint64_t token, uint64_t highest);
  // kInvalidArgument unless the resource is 1..kResourceBytesMax bytes and the token is not 0.
  static Status CheckArguments(std::string_view resource, uint64_t token);

  // resources_max bounds the table; CHECKs it is at least 1.
  explicit FenceGuard(size_t resources_max = 1'000'000);

  // Checks `token` against the resource's highest and, if it passes, records it as the highest.
  // kAborted (stale token: nothing recorded), kInvalidArgument (bad arguments), kNoSpace (a new
  // resource while resources_max are known: nothing recorded).
  Status Admit(std::string_view resource, uint64_t token);
  // The highest token admitted for the resource; 0 if none.
  uint64_t Highest(std::string_view resource) const;
  size_t size() const { return highest_.size(); }

 private:
  const size_t resources_max_;
  std::map<std::string, uint64_t, std::less<>> highest_;
};

struct FenceStoreOptions {
  size_t key_bytes_max = 256;              // data keys are 1..key_bytes_max bytes
  size_t value_bytes_max = 1 << 20;        // data values are 0..value_bytes_max bytes
  size_t map_bytes = size_t{16} << 20;     // initial LMDB map size
  size_t map_bytes_max = size_t{1} << 30;  // the map doubles on demand up to this
};

// A durable fenced key-value store in one directory (LMDB).
//
// Layout: three named LMDB databases, every value a checksummed record
//   "meta"    format -> u32 version
//   "tokens"  resource -> u64 highest token
//   "data"    key -> value
// A record is crc32c (4 bytes LE) | kind (1 byte) | payload, the CRC covering the database name,
// the key, the kind and the payload; a mismatch is kCorruption naming the record, never "absent".
//
// Durability: every Write/Register that changes anything is one LMDB write transaction committed
// with LMDB's durable sync (MDB_NOSYNC, MDB_NOMETASYNC and MDB_MAPASYNC are never used, and Open
// refuses an environment reporting them) before it returns Ok. A commit that fails with an I/O
// error makes the store refuse every later write (kIoError): a failed sync is never retried and
// then acknowledged; restart to recover from what is on disk.
//
// Ownership and threads: Open() holds an exclusive flock on DIR/fence.lock (released if the
// process dies); a second Open of the same directory is kFailedPrecondition. Every method may be
// called from any thread; calls are serialized by an internal mutex.
class FenceStore {
 public:
  // Opens (creating if needed) the store in `dir`. kInvalidArgument (bad options),
  // kFailedPrecondition (locked by another process or owner, a newer format, or asynchronous-sync
  // flags), kCorruption (an unreadable format record), kIoError.
  static Result<std::unique_ptr<FenceStore>> Open(const std::string& dir);
  static Result<std::unique_ptr<FenceStore>> Open(const std::string& dir,
                                                  const FenceStoreOptions& options);
  ~FenceStore();
  FenceStore(const FenceStore&) = delete;
  FenceStore& operator=(const FenceStore&) = delete;

  // In one durable transaction: reads the resource's highest token; if `token` is lower, returns
  // kAborted "stale token T for resource R: highest seen is H" and writes nothing; otherwise
  // records `token` as the highest and puts key = value. Other errors: kInvalidArgument (bad
  // resource, token 0, key or value out of bounds), kCorruption (the token record is damaged:
  // nothing written), kNoSpace (the map is at map_bytes_max: nothing written), kIoError.
  Status Write(std::string_view resource, uint64_t token, std::string_view key,
               std::string_view value);
  // What a new holder does first: the same check and record as Write, with no data, so that no
  // older holder can write to the resource from now on, even if the new holder has nothing to
  // write yet. Errors as for Write.
  Status Register(std::string_view resource, uint64_t token);
  // The highest token recorded for the resource; 0 if none. kInvalidArgument (bad resource),
  // kCorruption, kIoError.
  Result<uint64_t> HighestToken(std::string_view resource);
  // The value under `key`, or std::nullopt. kInvalidArgument (bad key), kCorruption, kIoError.
  Result<std::optional<std::string>> Read(std::string_view key);

  const std::string& dir() const { return dir_; }

 private:
  FenceStore(std::string dir, FenceStoreOptions options);
  Status OpenEnv() REQUIRES(mu_);
  Status OpenDatabases() REQUIRES(mu_);
  Status CheckData(std::string_view key, std::string_view value) const;
  // Runs `body` in a write transaction and commits it durably; grows the map and retries if the
  // body or the commit finds the map full. A body error aborts the transaction.
  template <typename Body>
  Status Transact(std::string_view what, Body body) REQUIRES(mu_);
  Status Fenced(MDB_txn* txn, std::string_view resource, uint64_t token) REQUIRES(mu_);
  Status GrowMap() REQUIRES(mu_);
  Status Annotate(const Status& s) const;  // prefixes "fence store DIR: "

  // Constant after construction.
  const std::string dir_;
  const FenceStoreOptions options_;

  Mutex mu_;  // serializes every method
  // Held from Open() until the destructor, after env_ is closed.
  std::unique_ptr<store::DirectoryLock> lock_;
  std::unique_ptr<store::LmdbEnv> env_ GUARDED_BY(mu_);
  unsigned meta_dbi_ GUARDED_BY(mu_) = 0;
  unsigned tokens_dbi_ GUARDED_BY(mu_) = 0;
  unsigned data_dbi_ GUARDED_BY(mu_) = 0;
  size_t map_bytes_ GUARDED_BY(mu_) = 0;
  Status fatal_ GUARDED_BY(mu_);  // non-ok once a commit failed: writes are refused for good
};

}  // namespace ballot::fence

#endif  // BALLOT_STORE_FENCE_H_
