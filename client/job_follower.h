// Follows the event stream of one video job (GenerateVideo or WatchVideoJob)
// for the `lvs` CLI: keeps the progress line current and writes the MP4 as
// its chunks arrive, into "<output>.part", renamed to the output when the
// job completes. A Requeued event voids the bytes of the lost attempt (the
// next attempt streams from offset 0), so the file restarts. Follow() reads
// a whole call (`lvs generate` and `lvs jobs watch` share it).
//
// Thread-safety: used by one thread.
#ifndef LVS_CLIENT_JOB_FOLLOWER_H_
#define LVS_CLIENT_JOB_FOLLOWER_H_

#include <grpcpp/client_context.h>
#include <grpcpp/support/sync_stream.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/progress_bar.h"
#include "lumina/video/v1/common.pb.h"

namespace lvs::client {

// How a followed call ended.
struct FollowOutcome {
  // The first error applying an event (the call was cancelled then), or OK.
  absl::Status local;
  // The call's final status (CANCELLED after a local error).
  grpc::Status rpc;

  // Returns whether the stream ended without an error on either side.
  bool ok() const { return local.ok() && rpc.ok(); }
};

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

  // Reads `reader` to the end of the call, applying each event. A local
  // error cancels the call through `context` and stops the reading. When
  // either side failed, the progress line is finished. `reader` and
  // `context` belong to the same call.
  FollowOutcome Follow(grpc::ClientReaderInterface<
                           lumina::video::v1::GenerateVideoEvent>& reader,
                       grpc::ClientContext& context);

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
