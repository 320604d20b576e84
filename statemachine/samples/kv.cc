#include "statemachine/samples/kv.h"

#include <glog/logging.h>

#include <algorithm>
#include <mutex>
#include <utility>

#include "statemachine/byte_codec.h"

namespace ballot::samples {

namespace {

// Every payload starts with an operation byte, then the operation's fields, each a
// length-prefixed byte string (statemachine/byte_codec.h). Explicit bytes rather than a struct
// dump, so that every replica and every client agrees on them whatever its compiler.
constexpr uint8_t kOpPut = 1;
constexpr uint8_t kOpDelete = 2;
constexpr uint8_t kOpCompareAndSet = 3;
constexpr uint8_t kOpGet = 4;
constexpr uint8_t kSnapshotVersion = 1;
constexpr size_t kSnapshotHeaderBytes = 1 + 8;  // version, key count
// How much a view's writer does per hold of the mutex: this bounds how long Apply can wait.
constexpr size_t kViewKeysPerLockMax = 256;
constexpr size_t kViewBytesPerLockMax = 256 * 1024;

// A decoded payload. The views point into the payload, which outlives it.
struct Request {
  uint8_t op = 0;
  std::string_view key;
  std::optional<std::string_view> expected;  // compare_and_set only
  std::string_view value;                    // put and compare_and_set only
};

// False if the payload is malformed: unknown operation, truncated, or trailing bytes.
bool DecodeRequest(std::string_view payload, Request* request) {
  ByteReader reader(payload);
  if (!reader.GetU8(&request->op) || !reader.GetBytes(&request->key)) return false;
  switch (request->op) {
    case kOpPut:
      if (!reader.GetBytes(&request->value)) return false;
      break;
    case kOpCompareAndSet: {
      uint8_t has_expected = 0;
      std::string_view expected;
      if (!reader.GetU8(&has_expected) || has_expected > 1) return false;
      if (has_expected == 1) {
        if (!reader.GetBytes(&expected)) return false;
        request->expected = expected;
      }
      if (!reader.GetBytes(&request->value)) return false;
      break;
    }
    case kOpDelete:
    case kOpGet:
      break;
    default:
      return false;
  }
  return reader.empty();
}

Outcome Ok() { return Outcome{StatusCode::kOk, "", ""}; }

Outcome Aborted(std::string message) {
  return Outcome{StatusCode::kAborted, "", std::move(message)};
}

Outcome Invalid(std::string message) {
  return Outcome{StatusCode::kInvalidArgument, "", std::move(message)};
}

// The snapshot format, shared by the blocking Snapshot() and the streaming view so their bytes
// are identical: version u8, key count u64, then (key, value) byte strings in key order.
void PutHeader(ByteWriter* writer, uint64_t count) {
  writer->PutU8(kSnapshotVersion);
  writer->PutU64(count);
}

void PutPair(ByteWriter* writer, std::string_view key, std::string_view value) {
  writer->PutBytes(key);
  writer->PutBytes(value);
}

Status WriteInPieces(std::string_view bytes, SnapshotWriter* out) {
  while (!bytes.empty()) {
    const size_t n = std::min(bytes.size(), kSnapshotChunkBytesMax);
    Status status = out->Write(bytes.substr(0, n));
    if (!status.ok()) return status;
    bytes.remove_prefix(n);
  }
  return Status::Ok();
}

Status Malformed(const std::string& what) {
  return Status(StatusCode::kCorruption, "kv snapshot: " + what);
}

// A length-prefixed byte string of at most `bytes_max` bytes: the length is checked before
// anything is read for it.
Status ReadBytes(SnapshotReader* in, size_t bytes_max, std::string* out) {
  Status status = in->ReadExact(4, out);
  if (!status.ok()) return status;
  ByteReader reader(*out);
  uint32_t length = 0;
  CHECK(reader.GetU32(&length));
  if (length > bytes_max) return Malformed("a key or value exceeds the limits");
  return in->ReadExact(length, out);
}

}  // namespace

struct KvStore::State {
  // Guards `map` against the view's writer thread: the apply thread changes it only under mu,
  // and reads it without (no one else writes it).
  std::mutex mu;
  Map map;
  // The active view, if any (all GUARDED_BY(mu)). The writer has written every key <= cursor
  // (when started); undo holds, for keys after the cursor changed since the view was taken,
  // their value as of the view (nullopt: absent then).
  bool view_active = false;
  bool view_started = false;
  std::string view_cursor;
  std::map<std::string, std::optional<std::string>, std::less<>> undo;
};

class KvStore::View final : public SnapshotView {
 public:
  View(std::shared_ptr<State> state, uint64_t count) : state_(std::move(state)), count_(count) {}
  ~View() override {
    if (!ended_) End();
  }
  View(const View&) = delete;
  View& operator=(const View&) = delete;

  Status WriteTo(SnapshotWriter* out) override {
    CHECK(!ended_) << "SnapshotView::WriteTo is called once";
    Status status = WriteAll(out);
    End();
    return status;
  }

 private:
  Status WriteAll(SnapshotWriter* out) {
    ByteWriter header;
    PutHeader(&header, count_);
    Status status = out->Write(header.data());
    uint64_t written = 0;
    for (bool done = false; status.ok() && !done;) {
      ByteWriter batch;
      done = NextBatch(&batch, &written);
      status = WriteInPieces(batch.data(), out);  // outside the mutex: Apply need not wait
    }
    if (status.ok()) CHECK_EQ(written, count_) << "a view writes exactly the keys it saw";
    return status;
  }

  // Appends the next keys in order, as of the view; true once there are none left.
  bool NextBatch(ByteWriter* batch, uint64_t* written) {
    State& s = *state_;
    std::lock_guard<std::mutex> lock(s.mu);
    CHECK(s.view_active);
    for (size_t i = 0; i < kViewKeysPerLockMax && batch->data().size() < kViewBytesPerLockMax;
         i++) {
      auto live = s.view_started ? s.map.upper_bound(s.view_cursor) : s.map.begin();
      auto undo = s.view_started ? s.undo.upper_bound(s.view_cursor) : s.undo.begin();
      const bool has_live = live != s.map.end();
      const bool has_undo = undo != s.undo.end();
      if (!has_live && !has_undo) return true;
      s.view_started = true;
      if (has_undo && (!has_live || undo->first <= live->first)) {
        // Changed since the view: its saved value wins over the live one.
        s.view_cursor = undo->first;
        if (undo->second.has_value()) {
          PutPair(batch, undo->first, *undo->second);
          ++*written;
        }
        s.undo.erase(undo);  // behind the cursor now, never consulted again
      } else {
        s.view_cursor = live->first;
        PutPair(batch, live->first, live->second);
        ++*written;
      }
    }
    return false;
  }

  void End() {
    ended_ = true;
    State& s = *state_;
    std::lock_guard<std::mutex> lock(s.mu);
    s.view_active = false;
    s.view_started = false;
    s.view_cursor.clear();
    s.undo.clear();
  }

  const std::shared_ptr<State> state_;
  const uint64_t count_;  // keys at the view
  bool ended_ = false;
};

std::string KvStore::EncodePut(std::string_view key, std::string_view value) {
  ByteWriter writer;
  writer.PutU8(kOpPut);
  writer.PutBytes(key);
  writer.PutBytes(value);
  return writer.Release();
}

std::string KvStore::EncodeDelete(std::string_view key) {
  ByteWriter writer;
  writer.PutU8(kOpDelete);
  writer.PutBytes(key);
  return writer.Release();
}

std::string KvStore::EncodeCompareAndSet(std::string_view key,
                                         std::optional<std::string_view> expected,
                                         std::string_view value) {
  ByteWriter writer;
  writer.PutU8(kOpCompareAndSet);
  writer.PutBytes(key);
  writer.PutU8(expected.has_value() ? 1 : 0);
  if (expected.has_value()) writer.PutBytes(*expected);
  writer.PutBytes(value);
  return writer.Release();
}

std::string KvStore::EncodeGet(std::string_view key) {
  ByteWriter writer;
  writer.PutU8(kOpGet);
  writer.PutBytes(key);
  return writer.Release();
}

Result<std::optional<std::string>> KvStore::DecodeGet(std::string_view data) {
  ByteReader reader(data);
  uint8_t present = 0;
  std::string_view value;
  if (!reader.GetU8(&present) || present > 1 || (present == 1 && !reader.GetBytes(&value)) ||
      !reader.empty()) {
    return Status(StatusCode::kInvalidArgument, "kv: malformed get reply");
  }
  if (present == 0) return std::optional<std::string>();
  return std::optional<std::string>(std::string(value));
}

KvStore::KvStore(Limits limits) : limits_(limits), state_(std::make_shared<State>()) {
  CHECK_GE(limits_.key_bytes_max, 1u);
  CHECK_GE(limits_.value_bytes_max, 1u);
  CHECK_GE(limits_.keys_max, 1u);
}

void KvStore::Apply(std::span<const AppliedCommand> batch, std::vector<Outcome>* outcomes) {
  CHECK(outcomes != nullptr);
  // One command at a time, in order: that is what makes the result independent of how the
  // commands were batched.
  for (const AppliedCommand& command : batch) {
    outcomes->push_back(ApplyOne(command.payload));
  }
}

Outcome KvStore::ApplyOne(std::string_view payload) {
  Request request;
  if (!DecodeRequest(payload, &request) || request.op == kOpGet) {
    return Invalid("kv: malformed command");
  }
  // A rejected command must leave the state as it was, so validate before touching the map.
  const Status sizes = CheckSizes(request.key, request.value);
  if (!sizes.ok()) return Invalid(sizes.message());
  // Held for one command: a view's writer may be reading the map on another thread.
  std::lock_guard<std::mutex> lock(state_->mu);
  switch (request.op) {
    case kOpPut:
      return Put(request.key, request.value);
    case kOpDelete:
      return Delete(request.key);
    case kOpCompareAndSet:
      return CompareAndSet(request.key, request.expected, request.value);
  }
  LOG(FATAL) << "DecodeRequest accepted unknown op " << int{request.op};
}

void KvStore::SaveForView(std::string_view key, Map::const_iterator it) {
  State& s = *state_;
  if (!s.view_active) return;
  if (s.view_started && key <= s.view_cursor) return;  // already written
  if (s.undo.find(key) != s.undo.end()) return;        // the first change saved the view's value
  s.undo.emplace(std::string(key),
                 it == s.map.end() ? std::nullopt : std::optional<std::string>(it->second));
}

Outcome KvStore::Put(std::string_view key, std::string_view value) {
  Map& map = state_->map;
  auto it = map.find(key);
  if (it != map.end()) {
    SaveForView(key, it);
    it->second = value;
    return Ok();
  }
  if (map.size() >= limits_.keys_max) {
    return Aborted("kv: store full (keys_max " + std::to_string(limits_.keys_max) + ")");
  }
  SaveForView(key, it);
  map.emplace(key, value);
  return Ok();
}

Outcome KvStore::Delete(std::string_view key) {
  Map& map = state_->map;
  auto it = map.find(key);
  if (it != map.end()) {
    SaveForView(key, it);
    map.erase(it);
  }
  return Ok();
}

Outcome KvStore::CompareAndSet(std::string_view key, std::optional<std::string_view> expected,
                               std::string_view value) {
  Map& map = state_->map;
  auto it = map.find(key);
  const bool present = it != map.end();
  if (!expected.has_value()) {
    if (present) return Aborted("compare_and_set: expected the key absent, but it has a value");
    return Put(key, value);
  }
  if (!present) return Aborted("compare_and_set: expected a value, but the key is absent");
  if (it->second != *expected) return Aborted("compare_and_set: the value differs from expected");
  SaveForView(key, it);
  it->second = value;
  return Ok();
}

Status KvStore::CheckSizes(std::string_view key, std::string_view value) const {
  std::string problem;
  if (key.size() > limits_.key_bytes_max) {
    problem = "key is " + std::to_string(key.size()) + " bytes, key_bytes_max is " +
              std::to_string(limits_.key_bytes_max);
  } else if (value.size() > limits_.value_bytes_max) {
    problem = "value is " + std::to_string(value.size()) + " bytes, value_bytes_max is " +
              std::to_string(limits_.value_bytes_max);
  }
  if (problem.empty()) return Status::Ok();
  return Status(StatusCode::kInvalidArgument, "kv: " + problem);
}

Outcome KvStore::Query(std::string_view request_bytes) const {
  Request request;
  if (!DecodeRequest(request_bytes, &request) || request.op != kOpGet) {
    return Invalid("kv: malformed query");
  }
  ByteWriter writer;
  const Map& map = state_->map;
  auto it = map.find(request.key);
  writer.PutU8(it == map.end() ? 0 : 1);
  if (it != map.end()) writer.PutBytes(it->second);
  return Outcome{StatusCode::kOk, writer.Release(), ""};
}

size_t KvStore::size() const { return state_->map.size(); }

bool KvStore::TEST_streaming_view_active() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->view_active;
}

std::string KvStore::Snapshot() const {
  const Map& map = state_->map;
  ByteWriter writer;
  PutHeader(&writer, map.size());
  for (const auto& [key, value] : map) PutPair(&writer, key, value);
  return writer.Release();
}

std::unique_ptr<SnapshotView> KvStore::TakeSnapshotView() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->view_active) {
      state_->view_active = true;
      return std::make_unique<View>(state_, state_->map.size());
    }
  }
  return StateMachine::TakeSnapshotView();  // one streaming view at a time: copy instead
}

Status KvStore::Restore(std::string_view snapshot) {
  StringSnapshotReader reader(snapshot);
  return RestoreFrom(&reader);
}

Status KvStore::RestoreFrom(SnapshotReader* in) {
  std::string bytes;
  Status status = in->ReadExact(kSnapshotHeaderBytes, &bytes);
  if (!status.ok()) return status;
  ByteReader header(bytes);
  uint8_t version = 0;
  uint64_t count = 0;
  CHECK(header.GetU8(&version) && header.GetU64(&count));
  if (version != kSnapshotVersion) return Malformed("unknown version " + std::to_string(version));
  if (count > limits_.keys_max) return Malformed("more keys than keys_max");
  // Built aside and swapped in at the end, so a bad snapshot leaves the current state untouched.
  Map map;
  std::string key;
  std::string value;
  for (uint64_t i = 0; i < count; i++) {
    status = ReadBytes(in, limits_.key_bytes_max, &key);
    if (status.ok()) status = ReadBytes(in, limits_.value_bytes_max, &value);
    if (!status.ok()) return status;
    // Snapshots list keys in increasing order; anything else was not written by one.
    if (!map.empty() && key <= map.rbegin()->first) return Malformed("keys out of order");
    map.emplace_hint(map.end(), std::move(key), std::move(value));
  }
  status = in->ExpectEnd();
  if (!status.ok()) return status;
  // A new State rather than a new map in the old one: a view still being written keeps the
  // old State, whose map nobody changes any more.
  auto fresh = std::make_shared<State>();
  fresh->map = std::move(map);
  state_ = std::move(fresh);
  return Status::Ok();
}

}  // namespace ballot::samples
