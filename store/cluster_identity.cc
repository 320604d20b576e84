#include "store/cluster_identity.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "store/checksum.h"
#include "store/sync_dir.h"

namespace ballot::store {
namespace {

constexpr char kHeader[] = "ballot cluster identity ";
// The bootstrap line of a node that joined an existing cluster.
constexpr char kJoinedExisting[] = "join";

Status Corrupt(const std::string& path, const std::string& why) {
  return Status(StatusCode::kCorruption, path + ": " + why);
}

std::string Body(const ClusterIdentity& identity) {
  std::string joined;
  for (paxos::NodeId id : identity.joined_members) {
    joined += (joined.empty() ? "" : ",") + std::to_string(id);
  }
  // Without a bootstrap line the file is format 1, which is what it then is.
  const uint32_t version = identity.bootstrap ? kClusterIdentityVersion : 1;
  std::string body = std::string(kHeader) + std::to_string(version) + "\n" + "cluster_id " +
                     FormatClusterId(identity.cluster_id) + "\n" + "node_id " +
                     std::to_string(identity.node_id) + "\n" + "joined " + joined + "\n";
  if (identity.bootstrap) {
    std::string members;
    for (const auto& [id, address] : *identity.bootstrap) {
      members += (members.empty() ? "" : ",") + std::to_string(id) + "@" + address;
    }
    body += "bootstrap " + (members.empty() ? std::string(kJoinedExisting) : members) + "\n";
  }
  return body;
}

std::string ChecksumLine(std::string_view body) {
  char line[32];
  std::snprintf(line, sizeof line, "crc32c 0x%08x\n", Crc32c(body));
  return line;
}

Status Validate(const ClusterIdentity& identity) {
  if (identity.cluster_id == 0) return Status(StatusCode::kInvalidArgument, "cluster id 0");
  if (identity.node_id == paxos::kNoNode || identity.node_id > paxos::kNodeIdMax) {
    return Status(StatusCode::kInvalidArgument, "bad node id");
  }
  bool self = false;
  for (size_t i = 0; i < identity.joined_members.size(); ++i) {
    const paxos::NodeId id = identity.joined_members[i];
    if (id == paxos::kNoNode || id > paxos::kNodeIdMax ||
        (i > 0 && id <= identity.joined_members[i - 1])) {
      return Status(StatusCode::kInvalidArgument, "joined members must be increasing node ids");
    }
    self = self || id == identity.node_id;
  }
  if (!self) return Status(StatusCode::kInvalidArgument, "joined members must include node_id");
  if (identity.bootstrap) {
    for (const auto& [id, address] : *identity.bootstrap) {
      if (id == paxos::kNoNode || id > paxos::kNodeIdMax || address.empty() ||
          address.find_first_of(",@\n ") != std::string::npos) {
        return Status(StatusCode::kInvalidArgument, "bad bootstrap member " + std::to_string(id));
      }
    }
  }
  return Status::Ok();
}

template <typename T>
bool ParseNumber(std::string_view text, T* out, int base = 10) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out, base);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

// The value of the line "<key> <value>" at `*pos`, advancing past it.
bool NextValue(std::string_view text, size_t* pos, std::string_view key, std::string_view* value) {
  const size_t end = text.find('\n', *pos);
  if (end == std::string_view::npos) return false;
  std::string_view line = text.substr(*pos, end - *pos);
  *pos = end + 1;
  if (line.size() < key.size() + 1 || line.substr(0, key.size()) != key ||
      line[key.size()] != ' ') {
    return false;
  }
  *value = line.substr(key.size() + 1);
  return true;
}

Result<ClusterIdentity> Parse(const std::string& path, std::string_view text) {
  const size_t crc_at = text.rfind("crc32c ");
  if (crc_at == std::string_view::npos ||
      text.substr(crc_at) != ChecksumLine(text.substr(0, crc_at))) {
    return Corrupt(path, "checksum mismatch or missing (the file is damaged)");
  }
  const std::string_view body = text.substr(0, crc_at);
  ClusterIdentity identity;
  size_t pos = 0;
  std::string_view v;
  uint32_t version = 0;
  if (!NextValue(body, &pos, "ballot cluster identity", &v) || !ParseNumber(v, &version)) {
    return Corrupt(path, "not a ballot cluster identity file");
  }
  if (version < 1 || version > kClusterIdentityVersion) {
    return Status(StatusCode::kFailedPrecondition,
                  path + ": written by a newer ballotd (format " + std::to_string(version) + ")");
  }
  if (!NextValue(body, &pos, "cluster_id", &v) || v.substr(0, 2) != "0x" ||
      !ParseNumber(v.substr(2), &identity.cluster_id, 16)) {
    return Corrupt(path, "bad cluster_id line");
  }
  if (!NextValue(body, &pos, "node_id", &v) || !ParseNumber(v, &identity.node_id)) {
    return Corrupt(path, "bad node_id line");
  }
  if (!NextValue(body, &pos, "joined", &v)) return Corrupt(path, "bad joined line");
  while (!v.empty()) {
    const size_t comma = v.find(',');
    paxos::NodeId id = 0;
    if (!ParseNumber(v.substr(0, comma), &id)) return Corrupt(path, "bad joined line");
    identity.joined_members.push_back(id);
    v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
  }
  if (version >= 2) {
    if (!NextValue(body, &pos, "bootstrap", &v)) return Corrupt(path, "bad bootstrap line");
    identity.bootstrap.emplace();
    if (v != kJoinedExisting) {
      while (!v.empty()) {
        const size_t comma = v.find(',');
        const std::string_view entry = v.substr(0, comma);
        const size_t at = entry.find('@');
        paxos::NodeId id = 0;
        if (at == std::string_view::npos || !ParseNumber(entry.substr(0, at), &id) ||
            !identity.bootstrap->emplace(id, std::string(entry.substr(at + 1))).second) {
          return Corrupt(path, "bad bootstrap line");
        }
        v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
      }
      if (identity.bootstrap->empty()) return Corrupt(path, "bad bootstrap line");
    }
  }
  if (pos != body.size()) return Corrupt(path, "unexpected lines");
  if (Status s = Validate(identity); !s.ok()) return Corrupt(path, s.message());
  return identity;
}

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status(StatusCode::kIoError, strerror(errno));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

}  // namespace

std::string FormatClusterId(uint64_t cluster_id) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%016llx", static_cast<unsigned long long>(cluster_id));
  return text;
}

Result<std::optional<ClusterIdentity>> LoadClusterIdentity(const std::string& dir) {
  const std::string path = dir + "/" + kClusterIdentityFile;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return std::optional<ClusterIdentity>();
  if (fd < 0) return Status(StatusCode::kIoError, "open " + path + ": " + strerror(errno));
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return Status(StatusCode::kIoError, "read " + path + ": " + strerror(err));
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kClusterIdentityBytesMax) break;
  }
  close(fd);
  if (text.size() > kClusterIdentityBytesMax) return Corrupt(path, "too large");
  Result<ClusterIdentity> identity = Parse(path, text);
  if (!identity.ok()) return identity.status();
  return std::optional<ClusterIdentity>(std::move(identity).value());
}

Status SaveClusterIdentity(const std::string& dir, const ClusterIdentity& identity) {
  if (Status s = Validate(identity); !s.ok()) {
    return Status(StatusCode::kInvalidArgument, "cluster identity: " + s.message());
  }
  const std::string body = Body(identity);
  const std::string text = body + ChecksumLine(body);
  const std::string path = dir + "/" + kClusterIdentityFile;
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status(StatusCode::kIoError, "open " + tmp + ": " + strerror(errno));
  Status s = WriteAll(fd, text);
  if (s.ok() && fsync(fd) != 0) s = Status(StatusCode::kIoError, strerror(errno));
  close(fd);
  if (!s.ok()) return Status(StatusCode::kIoError, "write " + tmp + ": " + s.message());
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return Status(StatusCode::kIoError, "rename " + tmp + ": " + strerror(errno));
  }
  return SyncDirectory(dir);
}

}  // namespace ballot::store
