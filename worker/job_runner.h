// Runs one leased video job on the model-owner thread: turns the server's
// JobAssignment into a GenerateRequest, drives the VideoModel, encodes its
// frames to fragmented MP4 with lvs_media, and reports every stage to the
// server as JobEvent messages (text encoded, steps with it/s and ETA,
// decoded frames, MP4 chunks of at most 1 MiB with contiguous offsets). The
// final message is a JobResult (Completed or an error) or, after a
// cancellation, a CancelAck.
//
// Thread-safety: `Run()` is called by one thread at a time (the model
// owner); the cancel token may be set from any thread.
#ifndef LVS_WORKER_JOB_RUNNER_H_
#define LVS_WORKER_JOB_RUNNER_H_

#include <functional>
#include <string>

#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lumina/video/v1/worker_service.pb.h"
#include "worker/video_model.h"

namespace lvs::worker {

// Sends one message to the server; returns false once the stream is gone.
using MessageWriter =
    std::function<bool(const lumina::video::v1::WorkerMessage& message)>;

// libx264 settings of the MP4 the worker streams.
struct EncoderSettings {
  int crf = 23;
  std::string preset = "medium";
  // Keyframe (and so fragment) interval in frames; 0 means one second.
  int gop_size = 0;
};

// Runs jobs on a resident model; see the file comment.
class JobRunner {
 public:
  // Runs jobs on `model` (not owned; outlives the runner).
  JobRunner(VideoModel* model, EncoderSettings settings);

  // Runs `assignment` to its end, sending its events through `write`, and
  // returns the final message for the server (JobResult or CancelAck).
  lumina::video::v1::WorkerMessage Run(
      const lumina::video::v1::JobAssignment& assignment,
      const CancelToken& cancel, const MessageWriter& write);

 private:
  VideoModel* model_;
  EncoderSettings settings_;
  absl::BitGen rng_;  // Seeds for requests without one.
};

// Converts an assignment's request into the model's request: every field,
// the explicit `sample` config included (INVALID_ARGUMENT when it does not
// parse).
absl::StatusOr<GenerateRequest> ToGenerateRequest(
    const lumina::video::v1::JobAssignment& assignment);

// Converts an explicit sample config of the API into the sampler's.
absl::StatusOr<sampler::SampleConfig> ToSampleConfig(
    const lumina::video::v1::SampleConfig& sample);

// The decode time a Completed event reports: decoding overlaps MP4 encoding
// chunk by chunk, so it is what is left of `total` after text encoding,
// denoising and encoding, clamped at zero (timer granularity and the
// overlap could make it negative).
absl::Duration DecodeTime(absl::Duration total, absl::Duration text_encode,
                          absl::Duration denoise, absl::Duration encode);

}  // namespace lvs::worker

#endif  // LVS_WORKER_JOB_RUNNER_H_
