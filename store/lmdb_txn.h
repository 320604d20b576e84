// LmdbTxn: an LMDB transaction that is aborted when it goes out of scope unless committed.
// Shared by every LMDB user in store/ (LmdbStore, FenceStore).
#ifndef BALLOT_STORE_LMDB_TXN_H_
#define BALLOT_STORE_LMDB_TXN_H_

#include <lmdb.h>

#include <utility>

namespace ballot::store {

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

}  // namespace ballot::store

#endif  // BALLOT_STORE_LMDB_TXN_H_
