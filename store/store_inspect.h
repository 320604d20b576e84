// Offline checks and a readable listing of an LmdbStore and the snapshot files beside it
// (DIR/snapshots, store/file_snapshot_store.h), for `ballotctl store verify|dump`.
//
// Both read through LmdbStore::Inspect() in one read transaction, so they can run next to a
// live server (open the store with LmdbStore::OpenForInspection()). Snapshot files are only
// read, never cleaned up: a tmp file may be a snapshot the live server is writing.
#ifndef BALLOT_STORE_STORE_INSPECT_H_
#define BALLOT_STORE_STORE_INSPECT_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "paxos/status.h"
#include "paxos/types.h"
#include "store/lmdb_store.h"

namespace ballot::store {

// "round.node", e.g. "7.2"; "0.0" is the zero ballot.
std::string BallotText(paxos::Ballot ballot);

inline constexpr size_t kVerifyProblemsMax = 100;        // listed; the rest are only counted
inline constexpr size_t kSnapshotFilesListedMax = 1000;  // examined; the rest are only counted

// One file in DIR/snapshots.
struct SnapshotFileReport {
  std::string name;               // the file's name within DIR/snapshots
  bool unfinished = false;        // a tmp file: a write in progress or cut by a crash
  paxos::Slot applied_below = 0;  // as recorded in the file; 0 if that could not be read
  uint64_t raw_bytes = 0;         // the file's size
  uint64_t state_bytes = 0;       // logical bytes that passed their checksums
  Status status;                  // Ok, or what is wrong (kCorruption: where and what)
};

// Every committed snapshot (newest first, each checked through all its checksums), then the
// unfinished ones (not checked). Empty if DIR/snapshots does not exist. *not_listed counts the
// files past kSnapshotFilesListedMax.
Result<std::vector<SnapshotFileReport>> InspectSnapshotFiles(const std::string& dir,
                                                             uint64_t* not_listed);
// One line: name, applied_below, sizes, "checksums OK" or "BAD: why".
void PrintSnapshotFile(const SnapshotFileReport& file, std::ostream& out);

struct VerifyReport {
  std::optional<StoreIdentity> identity;
  paxos::Ballot promised;
  paxos::Slot chosen_below = 1;
  paxos::Slot applied_below = 1;
  uint64_t snapshot_bytes = 0;
  uint64_t records = 0;        // every record examined, good or bad
  uint64_t bad_records = 0;    // failed checksum or decoding
  uint64_t entries = 0;        // log records that decoded
  uint64_t entry_bytes = 0;    // their stored size
  paxos::Slot first_slot = 0;  // 0 if no entries
  paxos::Slot last_slot = 0;
  std::vector<std::string> problems;  // at most kVerifyProblemsMax
  uint64_t problems_total = 0;
  std::vector<SnapshotFileReport> snapshot_files;  // a damaged one is also a problem
  uint64_t snapshot_files_not_listed = 0;
  // DIR/journal (journal records beyond LMDB's checkpoint are replayed at the next open; a
  // journal that recovery would refuse is a problem). nullopt until examined.
  std::optional<JournalReport> journal;

  bool ok() const { return problems_total == 0; }
};

// Checks every record's checksum and the store's invariants:
//   - an identity record exists, in a format this binary reads;
//   - applied_below <= chosen_below;
//   - every slot in [applied_below, chosen_below) is present (chosen means written);
//   - no entry below applied_below survives (the snapshot covers those);
//   - no entry at or above chosen_below was accepted at a ballot above the promise;
//   - the snapshot's two records agree;
//   - every snapshot file in DIR/snapshots passes its checksums and holds the slot its name says;
//   - DIR/journal, if present, passes the recovery rules of store/journal.h (a torn tail is not
//     a problem: it is a write that was never acknowledged).
// Returns an error only if the store cannot be read at all; problems go into the report.
Result<VerifyReport> VerifyStore(LmdbStore* store);

// A short human summary, then one line per problem.
void PrintVerifyReport(const VerifyReport& report, std::ostream& out);

struct DumpOptions {
  paxos::Slot from_slot = 0;   // first slot listed
  uint64_t slots_max = 0;      // 0 = every slot
  bool show_commands = false;  // one line per command as well
};

// Prints identity, promise, chosen_below, snapshot, the slots and the snapshot files readably;
// bad records and damaged snapshot files are printed as "BAD ..." lines. Returns kCorruption
// (after printing everything) if there were any, or another error if the store cannot be read.
Status DumpStore(LmdbStore* store, const DumpOptions& options, std::ostream& out);

}  // namespace ballot::store

#endif  // BALLOT_STORE_STORE_INSPECT_H_
