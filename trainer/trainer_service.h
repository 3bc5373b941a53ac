// The lvs-trainer runtime: dials in to the front server's WorkerService like
// a worker (one bidirectional stream, `x-lvs-worker-token` metadata,
// WORKER_KIND_TRAINER), asks for a training lease whenever idle, runs the
// leased job on its own thread (the DiT's TrainerGroup, or the VaeTrainer
// for MODEL_TYPE_VAE jobs), reports every step and every
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
#include "trainer/spec_proto.h"
#include "trainer/train_spec.h"
#include "trainer/trainer.h"

namespace lvs::trainer {

// Receives what a trainer process does (metrics, logs). Called from the
// session and job threads; implementations must be thread-safe and quick.
class TrainerObserver {
 public:
  virtual ~TrainerObserver() = default;
  // The stream to the server is up (true) or gone (false).
  virtual void OnConnected(bool connected) {}
  // A leased job started (or resumed) at `step` of `total_steps`.
  virtual void OnJobStarted(const std::string& job, int64_t step,
                            int64_t total_steps) {}
  // An optimiser step finished (stats of rank 0).
  virtual void OnStep(const std::string& job, const StepStats& stats) {}
  // A checkpoint was written for `step`.
  virtual void OnCheckpoint(const std::string& job, int64_t step) {}
  // The job ended: "completed", "failed" or "cancelled".
  virtual void OnJobEnded(const std::string& job, const std::string& outcome) {}
};

// Settings of a trainer process.
struct TrainerServiceOptions {
  std::string name;                        // Unique name sent at registration.
  client::ChannelOptions channel;          // The server's worker port and TLS.
  std::string token;                       // Worker token (may be empty).
  std::string device = "cpu";              // "cpu" or "cuda:N".
  std::string work_dir = "./lvs-trainer";  // Checkpoint root.
  absl::Duration backoff_initial = absl::Milliseconds(100);
  absl::Duration backoff_max = absl::Seconds(5);
  // Told of connections, steps and checkpoints; may be null. Not owned.
  TrainerObserver* observer = nullptr;
};

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
