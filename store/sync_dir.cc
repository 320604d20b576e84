#include "store/sync_dir.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ballot::store {

Status SyncDirectory(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status(StatusCode::kIoError, "open " + dir + ": " + strerror(errno));
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  if (rc != 0) return Status(StatusCode::kIoError, "fsync " + dir + ": " + strerror(err));
  return Status::Ok();
}

}  // namespace ballot::store
