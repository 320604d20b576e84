// LmdbStore's layout in LMDB (the names of its databases and meta records) and the small helpers
// that read it, shared by store/lmdb_store.cc (serving) and store/lmdb_store_inspect.cc (offline
// inspection). Internal to store/.
#ifndef BALLOT_STORE_LMDB_STORE_LAYOUT_H_
#define BALLOT_STORE_LMDB_STORE_LAYOUT_H_

#include <lmdb.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "paxos/status.h"
#include "paxos/types.h"
#include "store/lmdb_env.h"
#include "store/lmdb_store.h"
#include "store/record_codec.h"
#include "store/status_macros.h"

namespace ballot::store {

inline constexpr char kMetaDb[] = "meta";
inline constexpr char kLogDb[] = "log";
inline constexpr unsigned kDbsMax = 2;

inline constexpr std::string_view kIdentityKey = "identity";
inline constexpr std::string_view kPromisedKey = "promised";
inline constexpr std::string_view kChosenBelowKey = "chosen_below";
inline constexpr std::string_view kSnapshotKey = "snapshot";
inline constexpr std::string_view kSnapshotDataKey = "snapshot_data";
inline constexpr std::string_view kJournalSeqKey = "journal_seq";

// LmdbStore's transactions (a private name, defined here for its two source files).
class LmdbStore::Txn : public LmdbTxn {};

inline Status Corrupt(std::string message) {
  return Status(StatusCode::kCorruption, std::move(message));
}

inline std::string SlotName(paxos::Slot slot) { return "slot " + std::to_string(slot); }

// Lower-case hex of arbitrary bytes, for keys that may not be text.
std::string HexBytes(std::string_view bytes);

// Reads the record under `key` into *payload; *found is false if there is none.
inline Status GetRecord(MDB_txn* txn, MDB_dbi dbi, std::string_view key, RecordKind kind,
                        std::string_view what, std::string_view* payload, bool* found) {
  return store::GetRecord(txn, dbi, key, static_cast<uint8_t>(kind), RecordKindName(kind), key,
                          what, payload, found);
}

inline int PutRecord(MDB_txn* txn, MDB_dbi dbi, std::string_view key, RecordKind kind,
                     std::string_view payload, std::string* scratch) {
  return store::PutRecord(txn, dbi, key, static_cast<uint8_t>(kind), key, payload, scratch);
}

// Reads and decodes one meta record; *out is reset if the record is absent.
template <typename T, typename Decode>
Status ReadMeta(MDB_txn* txn, MDB_dbi dbi, std::string_view key, RecordKind kind, Decode decode,
                std::optional<T>* out) {
  std::string_view payload;
  bool found = false;
  STORE_RETURN_IF_ERROR(GetRecord(txn, dbi, key, kind, key, &payload, &found));
  out->reset();
  if (!found) return Status::Ok();
  T value{};
  if (Status s = decode(payload, &value); !s.ok()) {
    return Corrupt(std::string(key) + ": " + s.message());
  }
  *out = value;
  return Status::Ok();
}

}  // namespace ballot::store

#endif  // BALLOT_STORE_LMDB_STORE_LAYOUT_H_
