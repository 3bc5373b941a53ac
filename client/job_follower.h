// Follows the event stream of one video job (GenerateVideo or WatchVideoJob)
// for the `lvs` CLI: keeps the progress line current and writes the MP4 as
// its chunks arrive, into "<output>.part", renamed to the output when the
// job completes. A Requeued event voids the bytes of the lost attempt (the
// next attempt streams from offset 0), so the file restarts.
//
// Thread-safety: used by one thread.
#ifndef LVS_CLIENT_JOB_FOLLOWER_H_
#define LVS_CLIENT_JOB_FOLLOWER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/progress_bar.h"
#include "lumina/video/v1/common.pb.h"

namespace lvs::client {

// See the file comment.
class JobFollower {
 public:
  // Writes to `output` (empty: no file). With `from_offset` > 0 the first
  // `from_offset` bytes are taken from an existing "<output>.part" (or
  // `output`), which must hold at least that many. `progress` may be null.
  static absl::StatusOr<std::unique_ptr<JobFollower>> Create(
      const std::string& output, int64_t from_offset, ProgressBar* progress);

  ~JobFollower();
  JobFollower(const JobFollower&) = delete;
  JobFollower& operator=(const JobFollower&) = delete;

  // Applies one event. DATA_LOSS when a chunk leaves a gap; errors name the
  // file when a write fails.
  absl::Status Consume(const lumina::video::v1::GenerateVideoEvent& event);

  // After a Completed event: checks the size, syncs the file and renames it
  // to the output. FAILED_PRECONDITION when no Completed event came.
  absl::Status Finish();

  // Returns whether a Completed event came.
  bool completed() const { return completed_; }

  // Returns the Completed event (valid when completed()).
  const lumina::video::v1::Completed& result() const { return result_; }

  // Returns the job name seen in the events.
  const std::string& job() const { return job_; }

 private:
  JobFollower(std::string output, int fd, int64_t offset,
              ProgressBar* progress);

  // Writes `data` at `offset` (skipping what is already written).
  absl::Status WriteChunk(int64_t offset, const std::string& data);

  const std::string output_;
  int fd_;  // -1 without a file.
  int64_t next_offset_;
  ProgressBar* progress_;
  ProgressState state_;
  bool completed_ = false;
  lumina::video::v1::Completed result_;
  std::string job_;
};

}  // namespace lvs::client

#endif  // LVS_CLIENT_JOB_FOLLOWER_H_
