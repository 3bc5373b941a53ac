// An exclusive lock on a server's data directory (flock on DIR/LOCK, which
// holds the owner's pid), so two lvs-server processes never share one job
// store: the second would re-queue the first's running jobs.
//
// Thread-safety: a value owned by one thread; the lock lives as long as it.
#ifndef LVS_SERVER_DATA_DIR_LOCK_H_
#define LVS_SERVER_DATA_DIR_LOCK_H_

#include <string>

#include "absl/status/statusor.h"

namespace lvs::server {

class DataDirLock {
 public:
  // Creates `dir` if needed and takes its lock; FAILED_PRECONDITION "in use
  // by pid N" when another process holds it.
  static absl::StatusOr<DataDirLock> Acquire(const std::string& dir);

  DataDirLock(DataDirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  DataDirLock& operator=(DataDirLock&& other) noexcept;
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;
  ~DataDirLock();

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace lvs::server

#endif  // LVS_SERVER_DATA_DIR_LOCK_H_
