#include "store/store_inspect.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iterator>
#include <system_error>

#include "store/file_snapshot_store.h"

namespace ballot::store {

constexpr int kJournalReadAttemptsMax = 3;
namespace {

class Verifier final : public RecordVisitor {
 public:
  explicit Verifier(VerifyReport* report) : r_(report) {}

  void OnIdentity(const StoreIdentity& identity) override {
    ++r_->records;
    r_->identity = identity;
    if (identity.format_version > kStoreFormatVersion) {
      Problem("identity: store format " + std::to_string(identity.format_version) +
              " is newer than this binary's " + std::to_string(kStoreFormatVersion));
    }
  }
  void OnPromised(paxos::Ballot promised) override {
    ++r_->records;
    r_->promised = promised;
  }
  void OnChosenBelow(paxos::Slot chosen_below) override {
    ++r_->records;
    r_->chosen_below = chosen_below;
  }
  void OnSnapshot(const SnapshotMeta& meta) override {
    ++r_->records;
    snapshot_ = meta;
    r_->applied_below = meta.applied_below;
    r_->snapshot_bytes = meta.data_bytes;
  }
  void OnSnapshotData(paxos::Slot applied_below, uint64_t data_bytes) override {
    ++r_->records;
    snapshot_data_ = SnapshotMeta{applied_below, data_bytes};
  }
  void OnEntry(const paxos::Entry& entry, size_t record_bytes) override {
    ++r_->records;
    ++r_->entries;
    r_->entry_bytes += record_bytes;
    BeforeLog();
    NoteSlot(entry.slot);
    if (entry.slot >= r_->chosen_below && entry.ballot > r_->promised) {
      Problem("slot " + std::to_string(entry.slot) + ": accepted at ballot " +
              BallotText(entry.ballot) + ", above the promise " + BallotText(r_->promised));
    }
  }
  void OnBadRecord(paxos::Slot slot, const Status& status) override {
    ++r_->records;
    ++r_->bad_records;
    if (slot != 0) {
      BeforeLog();
      NoteSlot(slot);  // present, though unreadable: not also "missing"
    }
    Problem(status.message());
  }

  // Checks that need every record.
  void Finish() {
    BeforeLog();
    if (expect_ < r_->chosen_below && r_->applied_below <= r_->chosen_below) {
      Missing(expect_, r_->chosen_below - 1);
    }
    if (below_applied_ > 0) {
      Problem(std::to_string(below_applied_) + " entries below applied_below " +
              std::to_string(r_->applied_below) + " are still stored (the snapshot covers them)");
    }
  }

  // For checks made outside the store's records (the snapshot files).
  void AddProblem(std::string text) { Problem(std::move(text)); }

 private:
  // Runs once, after the meta records and before the first slot.
  void BeforeLog() {
    if (log_started_) return;
    log_started_ = true;
    if (!r_->identity) Problem("identity: missing; the store's cluster and node are unknown");
    if (r_->applied_below > r_->chosen_below) {
      Problem("snapshot applied_below " + std::to_string(r_->applied_below) +
              " is above chosen_below " + std::to_string(r_->chosen_below));
    }
    if (snapshot_.has_value() != snapshot_data_.has_value()) {
      Problem(snapshot_ ? "snapshot_data: missing" : "snapshot: missing, but snapshot_data exists");
    } else if (snapshot_ && !(*snapshot_ == *snapshot_data_)) {
      Problem("snapshot_data (applied_below " + std::to_string(snapshot_data_->applied_below) +
              ", " + std::to_string(snapshot_data_->data_bytes) +
              " bytes) does not match snapshot (applied_below " +
              std::to_string(snapshot_->applied_below) + ", " +
              std::to_string(snapshot_->data_bytes) + " bytes)");
    }
    expect_ = r_->applied_below;
  }

  void NoteSlot(paxos::Slot slot) {
    if (r_->first_slot == 0) r_->first_slot = slot;
    r_->last_slot = slot;
    if (slot < r_->applied_below) {
      ++below_applied_;
      return;
    }
    if (slot < r_->chosen_below) {
      if (slot > expect_) Missing(expect_, slot - 1);
      expect_ = slot + 1;
    }
  }

  void Missing(paxos::Slot first, paxos::Slot last) {
    const std::string which = first == last
                                  ? "slot " + std::to_string(first)
                                  : "slots " + std::to_string(first) + ".." + std::to_string(last);
    Problem(which + " missing below chosen_below " + std::to_string(r_->chosen_below));
  }

  void Problem(std::string text) {
    ++r_->problems_total;
    if (r_->problems.size() < kVerifyProblemsMax) r_->problems.push_back(std::move(text));
  }

  VerifyReport* r_;
  std::optional<SnapshotMeta> snapshot_;
  std::optional<SnapshotMeta> snapshot_data_;
  bool log_started_ = false;
  paxos::Slot expect_ = 1;
  uint64_t below_applied_ = 0;
};

std::string Printable(const std::string& payload, size_t bytes_max) {
  std::string out;
  for (size_t i = 0; i < payload.size() && i < bytes_max; ++i) {
    const unsigned char c = static_cast<unsigned char>(payload[i]);
    if (std::isprint(c) && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  if (payload.size() > bytes_max) out += "...";
  return out;
}

class Dumper final : public RecordVisitor {
 public:
  Dumper(const DumpOptions& options, std::ostream& out) : options_(options), out_(out) {}

  // Meta records arrive in key order; they are printed in a fixed, readable order instead.
  void OnIdentity(const StoreIdentity& id) override {
    meta_[0] = "identity: cluster " + std::to_string(id.cluster_id) + " node " +
               std::to_string(id.node_id) + " format " + std::to_string(id.format_version);
  }
  void OnPromised(paxos::Ballot promised) override {
    meta_[1] = "promised: " + BallotText(promised);
  }
  void OnChosenBelow(paxos::Slot chosen_below) override {
    meta_[2] = "chosen_below: " + std::to_string(chosen_below);
  }
  void OnSnapshot(const SnapshotMeta& meta) override {
    meta_[3] = "snapshot: applied_below " + std::to_string(meta.applied_below) + ", " +
               std::to_string(meta.data_bytes) + " bytes";
  }
  void OnSnapshotData(paxos::Slot applied_below, uint64_t data_bytes) override {
    meta_[4] = "snapshot_data: applied_below " + std::to_string(applied_below) + ", " +
               std::to_string(data_bytes) + " bytes";
  }
  void OnEntry(const paxos::Entry& e, size_t record_bytes) override {
    FlushMeta();
    Count(e.slot);
    if (!Listed(e.slot)) return;
    size_t payload_bytes = 0;
    for (const paxos::Command& c : e.value.commands) payload_bytes += c.payload.size();
    out_ << "slot " << e.slot << "  ballot " << BallotText(e.ballot) << "  epoch "
         << BallotText(e.value.epoch) << (e.value.leader_start ? "  leader_start" : "")
         << (e.value.IsNoop() ? "  noop" : "") << "  commands " << e.value.commands.size()
         << "  payload " << payload_bytes << " B  record " << record_bytes << " B\n";
    if (!options_.show_commands) return;
    for (const paxos::Command& c : e.value.commands) {
      out_ << "    client " << c.client_id << " seq " << c.sequence << " acked " << c.acked_sequence
           << " expected_epoch "
           << (c.expected_epoch == 0 ? std::string("none")
                                     : BallotText(paxos::Ballot::FromRaw(c.expected_epoch)))
           << " stamp_ms " << c.stamp_ms << " payload " << c.payload.size() << " B \""
           << Printable(c.payload, kPayloadShownBytesMax) << "\"\n";
    }
  }
  void OnBadRecord(paxos::Slot slot, const Status& status) override {
    ++bad_;
    if (slot == 0) {
      bad_meta_.push_back("BAD " + status.message());
      return;
    }
    FlushMeta();
    Count(slot);
    if (Listed(slot)) out_ << "BAD " << status.message() << "\n";
  }

  uint64_t bad() const { return bad_; }

  void Finish() {
    FlushMeta();
    if (unlisted_ > 0) out_ << "... " << unlisted_ << " more slots not listed\n";
    out_ << "slots: " << slots_;
    if (slots_ > 0) out_ << " (" << first_ << ".." << last_ << ")";
    out_ << ", bad records: " << bad_ << "\n";
  }

 private:
  static constexpr size_t kPayloadShownBytesMax = 64;

  void FlushMeta() {
    if (meta_flushed_) return;
    meta_flushed_ = true;
    static constexpr const char* kAbsent[] = {"identity: none", "promised: none (0.0)",
                                              "chosen_below: none (1)", "snapshot: none", ""};
    for (size_t i = 0; i < std::size(meta_); ++i) {
      const std::string& line = meta_[i].empty() ? kAbsent[i] : meta_[i];
      if (!line.empty()) out_ << line << "\n";
    }
    for (const std::string& line : bad_meta_) out_ << line << "\n";
  }
  void Count(paxos::Slot slot) {
    if (slots_ == 0) first_ = slot;
    last_ = slot;
    ++slots_;
  }
  bool Listed(paxos::Slot slot) {
    if (slot < options_.from_slot) return false;
    if (options_.slots_max != 0 && listed_ >= options_.slots_max) {
      ++unlisted_;
      return false;
    }
    ++listed_;
    return true;
  }

  const DumpOptions options_;
  std::ostream& out_;
  std::string meta_[5];
  std::vector<std::string> bad_meta_;
  bool meta_flushed_ = false;
  uint64_t slots_ = 0;
  uint64_t listed_ = 0;
  uint64_t unlisted_ = 0;
  uint64_t bad_ = 0;
  paxos::Slot first_ = 0;
  paxos::Slot last_ = 0;
};

SnapshotFileReport InspectSnapshotFile(const std::string& snapshots_dir, const std::string& name) {
  SnapshotFileReport file;
  file.name = name;
  file.unfinished = FileSnapshotStore::ParseFileName(name) == 0;
  if (file.unfinished) {
    std::error_code ec;
    file.raw_bytes = std::filesystem::file_size(snapshots_dir + "/" + name, ec);
    return file;
  }
  file.status = VerifySnapshotFile(snapshots_dir + "/" + name, &file.applied_below,
                                   &file.state_bytes, &file.raw_bytes);
  return file;
}

// Adds the snapshot files beside the store to the report; a damaged one is a problem.
void VerifySnapshotFiles(const std::string& dir, VerifyReport* report,
                         const std::function<void(std::string)>& problem) {
  Result<std::vector<SnapshotFileReport>> files =
      InspectSnapshotFiles(dir, &report->snapshot_files_not_listed);
  if (!files.ok()) {
    problem("snapshot files: " + files.status().ToString());
    return;
  }
  report->snapshot_files = std::move(files).value();
  for (const SnapshotFileReport& file : report->snapshot_files) {
    if (!file.status.ok()) problem("snapshot file " + file.name + ": " + file.status.ToString());
  }
}

}  // namespace

Result<std::vector<SnapshotFileReport>> InspectSnapshotFiles(const std::string& dir,
                                                             uint64_t* not_listed) {
  *not_listed = 0;
  const std::string snapshots_dir = FileSnapshotStore::SnapshotsDir(dir);
  std::error_code ec;
  if (!std::filesystem::exists(snapshots_dir, ec)) return std::vector<SnapshotFileReport>();
  std::vector<std::string> committed;
  std::vector<std::string> unfinished;
  for (auto it = std::filesystem::directory_iterator(snapshots_dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (FileSnapshotStore::ParseFileName(name) != 0) {
      committed.push_back(name);
    } else if (name.rfind("tmp-", 0) == 0) {
      unfinished.push_back(name);
    }
  }
  if (ec) return Status(StatusCode::kIoError, "list " + snapshots_dir + ": " + ec.message());
  // Names hold the slot in 20 digits, so name order is slot order.
  std::sort(committed.rbegin(), committed.rend());
  std::sort(unfinished.begin(), unfinished.end());
  std::vector<SnapshotFileReport> files;
  for (const std::vector<std::string>* names : {&committed, &unfinished}) {
    for (const std::string& name : *names) {
      if (files.size() >= kSnapshotFilesListedMax) {
        ++*not_listed;
        continue;
      }
      files.push_back(InspectSnapshotFile(snapshots_dir, name));
    }
  }
  return files;
}

void PrintSnapshotFile(const SnapshotFileReport& file, std::ostream& out) {
  out << "snapshot file " << file.name << ": ";
  if (file.unfinished) {
    out << file.raw_bytes << " B, unfinished (being written, or cut by a crash: deleted when "
        << "the node next starts)\n";
    return;
  }
  out << "applied_below " << file.applied_below << ", " << file.raw_bytes << " B (state "
      << file.state_bytes << " B), ";
  if (file.status.ok()) {
    out << "checksums OK\n";
  } else {
    out << "BAD: " << file.status.ToString() << "\n";
  }
}

std::string BallotText(paxos::Ballot ballot) {
  return std::to_string(ballot.round()) + "." + std::to_string(ballot.node());
}

Result<VerifyReport> VerifyStore(LmdbStore* store) {
  VerifyReport report;
  Verifier verifier(&report);
  if (Status s = store->Inspect(&verifier); !s.ok()) return s;
  verifier.Finish();
  VerifySnapshotFiles(store->dir(), &report,
                      [&verifier](std::string text) { verifier.AddProblem(std::move(text)); });
  // A live server may checkpoint and restart its journal between our read of LMDB's checkpoint
  // and our read of the file, which looks like missing records: look again before reporting.
  for (int attempt = 0; attempt < kJournalReadAttemptsMax; ++attempt) {
    Result<JournalReport> journal = store->InspectJournal();
    if (!journal.ok()) return journal.status();
    report.journal = journal.value();
    if (report.journal->status.ok()) break;
  }
  if (!report.journal->status.ok()) verifier.AddProblem(report.journal->status.message());
  return report;
}

void PrintVerifyReport(const VerifyReport& r, std::ostream& out) {
  if (r.identity) {
    out << "identity: cluster " << r.identity->cluster_id << " node " << r.identity->node_id
        << " format " << r.identity->format_version << "\n";
  }
  out << "promised " << BallotText(r.promised) << ", chosen_below " << r.chosen_below
      << ", applied_below " << r.applied_below << ", snapshot " << r.snapshot_bytes << " B\n";
  out << "records " << r.records << " (bad " << r.bad_records << "), entries " << r.entries;
  if (r.entries > 0) out << " (slots " << r.first_slot << ".." << r.last_slot << ")";
  out << ", " << r.entry_bytes << " B\n";
  if (r.journal && r.journal->exists) {
    out << "journal: " << r.journal->file_bytes << " B preallocated, checkpoint at seq "
        << r.journal->checkpoint_seq << ", " << r.journal->pending_records
        << " records not yet in LMDB (" << r.journal->pending_bytes << " B)"
        << (r.journal->torn_tail ? ", ends in a torn record (never acknowledged)" : "") << "\n";
  }
  out << "snapshot files: " << r.snapshot_files.size() + r.snapshot_files_not_listed << "\n";
  for (const SnapshotFileReport& file : r.snapshot_files) PrintSnapshotFile(file, out);
  if (r.snapshot_files_not_listed > 0) {
    out << "... and " << r.snapshot_files_not_listed << " more snapshot files not examined\n";
  }
  for (const std::string& p : r.problems) out << "PROBLEM: " << p << "\n";
  if (r.problems_total > r.problems.size()) {
    out << "... and " << r.problems_total - r.problems.size() << " more problems\n";
  }
  out << (r.ok() ? "OK" : "FAILED: " + std::to_string(r.problems_total) + " problems") << "\n";
}

Status DumpStore(LmdbStore* store, const DumpOptions& options, std::ostream& out) {
  out << "data_dir: " << store->dir() << "\n";
  Dumper dumper(options, out);
  if (Status s = store->Inspect(&dumper); !s.ok()) return s;
  dumper.Finish();
  uint64_t not_listed = 0;
  Result<std::vector<SnapshotFileReport>> files = InspectSnapshotFiles(store->dir(), &not_listed);
  if (!files.ok()) return files.status();
  out << "snapshot files: " << files.value().size() + not_listed << "\n";
  uint64_t bad_files = 0;
  for (const SnapshotFileReport& file : files.value()) {
    PrintSnapshotFile(file, out);
    if (!file.status.ok()) ++bad_files;
  }
  if (not_listed > 0) out << "... and " << not_listed << " more snapshot files not examined\n";
  Result<JournalReport> journal = store->InspectJournal();
  if (!journal.ok()) return journal.status();
  if (journal.value().exists) {
    // The slots above are LMDB's; these batches come on top of them at the next open.
    out << "journal: " << journal.value().pending_records << " records ("
        << journal.value().pending_bytes << " B) beyond LMDB's checkpoint at seq "
        << journal.value().checkpoint_seq << ", replayed at the next open";
    if (!journal.value().status.ok()) out << "; BAD: " << journal.value().status.ToString();
    out << "\n";
  }
  if (dumper.bad() > 0 || bad_files > 0) {
    return Status(StatusCode::kCorruption, std::to_string(dumper.bad()) + " bad records and " +
                                               std::to_string(bad_files) +
                                               " bad snapshot files (the BAD lines above)");
  }
  return Status::Ok();
}

}  // namespace ballot::store
