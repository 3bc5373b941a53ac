// The results directory: one fragmented MP4 per video job
// (`<dir>/<job id>.mp4`), appended chunk by chunk as a worker streams it and
// read back by byte range for WatchVideoJob. Appends are written without
// syncing; the job store's writer calls Sync() on every file a batch wrote
// before committing it, so an acknowledged chunk survives a crash.
//
// Thread-safety: stateless over the directory: reads may run on any thread
// while the one writer thread appends.
#ifndef LVS_SERVER_RESULT_FILES_H_
#define LVS_SERVER_RESULT_FILES_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lvs::server {

// Files of the results directory.
class ResultFiles {
 public:
  // Uses `dir`, creating it if needed (see `Init`).
  explicit ResultFiles(std::string dir) : dir_(std::move(dir)) {}

  // Creates the directory.
  absl::Status Init();

  // The file of job `id`.
  std::string Path(const std::string& id) const;

  // Current size of job `id`'s file (0 when absent).
  int64_t Size(const std::string& id) const;

  // Appends `data` at `offset`, which must equal the current size
  // (OUT_OF_RANGE otherwise: chunks are contiguous).
  absl::Status Append(const std::string& id, int64_t offset,
                      const std::string& data);

  // fdatasync()s job `id`'s file (nothing when absent).
  absl::Status Sync(const std::string& id);

  // Reads up to `length` bytes at `offset`; fewer at the end of the file.
  absl::StatusOr<std::string> Read(const std::string& id, int64_t offset,
                                   int64_t length) const;

  // Deletes job `id`'s file if present.
  void Remove(const std::string& id);

  // Sum of the sizes of every result file.
  int64_t TotalBytes() const;

 private:
  std::string dir_;
};

}  // namespace lvs::server

#endif  // LVS_SERVER_RESULT_FILES_H_
