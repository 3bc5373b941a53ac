// The lvs-trainer runtime: dials in to the front server's WorkerService
// through rpc::WorkerLink like a worker (WORKER_KIND_TRAINER; registration,
// heartbeats, leases, cancellation, drain and reconnection are the link's),
// runs each leased job on its own thread (the DiT's TrainerGroup, or the
// VaeTrainer for MODEL_TYPE_VAE jobs), reports every step and
// every checkpoint, stops within one step on CancelJob (answering
// CancelAck) and resumes from the checkpoint the server hands over.
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
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lumina/video/v1/worker_service.grpc.pb.h"
#include "rpc/channel.h"
#include "rpc/worker_link.h"
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
  rpc::ChannelOptions channel;             // The server's worker port and TLS.
  std::string token;                       // Worker token (may be empty).
  std::string device = "cpu";              // "cpu" or "cuda:N".
  std::string work_dir = "./lvs-trainer";  // Checkpoint root.
  absl::Duration backoff_initial = absl::Milliseconds(100);
  absl::Duration backoff_max = absl::Seconds(5);
  // Told of connections, steps and checkpoints; may be null. Not owned.
  TrainerObserver* observer = nullptr;
};

// One trainer process's connection; see the file comment.
class TrainerService : private rpc::WorkerLink::Delegate {
 public:
  explicit TrainerService(TrainerServiceOptions options);
  ~TrainerService() override;

  // Connects and serves until drained. Returns OK after a drain.
  absl::Status Run();

  // Finishes the running job, takes no more, and makes Run() return.
  void Drain();

 private:
  // rpc::WorkerLink::Delegate.
  lumina::video::v1::RegisterWorker Registration() override;
  void StartLease(const lumina::video::v1::ServerMessage& assignment,
                  std::shared_ptr<rpc::Lease> lease) override;
  void OnConnected(bool connected) override;

  // Runs one job (job thread).
  void RunJob(const rpc::Lease& leased,
              const lumina::video::v1::TrainingAssignment& assignment);

  const TrainerServiceOptions options_;
  rpc::WorkerLink link_;
  // The thread of the running (or last) job; started and joined on the
  // link's reader thread, joined last by the destructor.
  std::thread job_thread_;
};

}  // namespace lvs::trainer

#endif  // LVS_TRAINER_TRAINER_SERVICE_H_
