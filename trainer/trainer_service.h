// The lvs-trainer runtime: dials in to the front server's WorkerService like
// a worker (one bidirectional stream, `x-lvs-worker-token` metadata,
// WORKER_KIND_TRAINER), asks for a training lease whenever idle, runs the
// leased job on its own thread (Trainer), reports every step and every
// checkpoint, heartbeats, stops within one step on CancelJob (answering
// CancelAck), resumes from the checkpoint the server hands over, and
// reconnects with exponential backoff when the server goes away.
//
// Checkpoints go to `<work_dir>/<job id>/step-NNNNNNN`; on loopback (or a
// shared file system) a new trainer resumes a job a killed one left.
//
// Thread-safety: Run() is called once from one thread; Drain() is safe from
// any thread.
#ifndef LVS_TRAINER_TRAINER_SERVICE_H_
#define LVS_TRAINER_TRAINER_SERVICE_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/channel.h"
#include "lumina/video/v1/worker_service.grpc.pb.h"
#include "trainer/train_spec.h"

namespace lvs::trainer {

// Settings of a trainer process.
struct TrainerServiceOptions {
  std::string name;                        // Unique name sent at registration.
  client::ChannelOptions channel;          // The server's worker port and TLS.
  std::string token;                       // Worker token (may be empty).
  std::string device = "cpu";              // "cpu" or "cuda:N".
  std::string work_dir = "./lvs-trainer";  // Checkpoint root.
  absl::Duration backoff_initial = absl::Milliseconds(100);
  absl::Duration backoff_max = absl::Seconds(5);
};

// Converts a job spec from the API (zero fields take the reference's
// defaults) and validates it; INVALID_ARGUMENT names the field.
absl::StatusOr<TrainSpec> TrainSpecFromProto(
    const lumina::video::v1::TrainingJobSpec& proto);

class TrainerSession;

// One trainer process's connection; see the file comment.
class TrainerService {
 public:
  explicit TrainerService(TrainerServiceOptions options);
  ~TrainerService();

  // Connects and serves until drained. Returns OK after a drain.
  absl::Status Run();

  // Finishes the running job, takes no more, and makes Run() return.
  void Drain();

 private:
  absl::Status ServeSession(bool* registered);
  void RunJob(std::shared_ptr<TrainerSession> session,
              lumina::video::v1::TrainingAssignment assignment);

  const TrainerServiceOptions options_;
  std::unique_ptr<lumina::video::v1::WorkerService::Stub> stub_;
  absl::Mutex mu_;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<TrainerSession> session_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lvs::trainer

#endif  // LVS_TRAINER_TRAINER_SERVICE_H_
