// The lvs-worker runtime: dials in to the front server's WorkerService
// through rpc::WorkerLink (registration with the model's capabilities,
// heartbeats, leases, cancellation, drain, reconnection), runs each leased
// job on the single model-owner thread (fed by a task queue holding at most
// one job and the reloads; the gRPC reader never runs the model), forwards
// cancellations within one step and answers reloads. A drain (SIGTERM or the
// server's DrainCommand) finishes the running job, takes no more and returns
// from Run().
//
// Thread-safety: Run() is called once, from one thread. Drain() and
// Snapshot() are safe from any thread.
#ifndef LVS_WORKER_WORKER_H_
#define LVS_WORKER_WORKER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lumina/video/v1/worker_service.grpc.pb.h"
#include "rpc/channel.h"
#include "rpc/worker_link.h"
#include "worker/job_runner.h"
#include "worker/video_model.h"

namespace lvs::worker {

// Settings of a worker process.
struct WorkerOptions {
  // Unique worker name sent at registration.
  std::string name;
  // The server's worker port and TLS files.
  rpc::ChannelOptions channel;
  // Shared worker token sent as `x-lvs-worker-token` (may be empty).
  std::string token;
  // Device the model runs on ("cpu", "cuda:0").
  std::string device = "cpu";
  EncoderSettings encoder;
  // Reconnect backoff: doubles from `backoff_initial` up to `backoff_max`.
  absl::Duration backoff_initial = absl::Milliseconds(100);
  absl::Duration backoff_max = absl::Seconds(5);
};

// Counters exposed on the worker's /metrics endpoint.
struct WorkerCounters {
  bool connected = false;
  bool busy = false;
  int64_t jobs_succeeded = 0;
  int64_t jobs_failed = 0;
  int64_t jobs_cancelled = 0;
  // Denoising steps (sampler grid intervals) the model finished, counted as
  // each step ends, in every job whatever its outcome.
  int64_t denoise_steps = 0;
  // DiT forwards (one per CFG branch and step) of succeeded jobs, computed
  // in full and reused from the step cache.
  int64_t dit_forwards_computed = 0;
  int64_t dit_forwards_cached = 0;
  int64_t connects = 0;
  int devices = 1;  // Devices the model runs on.
  uint64_t device_memory_bytes = 0;
};

// One worker process's connection and model owner; see the file comment.
class Worker : private rpc::WorkerLink::Delegate {
 public:
  // Serves `model` (owned) with `options`.
  Worker(WorkerOptions options, std::unique_ptr<VideoModel> model);
  ~Worker() override;

  // Connects and serves until drained. Returns OK after a drain.
  absl::Status Run();

  // Finishes the running job, takes no more, and makes Run() return.
  void Drain();

  // Returns the current counters.
  WorkerCounters Snapshot() const;

 private:
  // One unit of work for the model-owner thread.
  struct Task {
    std::shared_ptr<rpc::Lease> lease;             // Set for jobs.
    std::shared_ptr<CancelToken> cancel;           // Set for jobs.
    lumina::video::v1::JobAssignment assignment;   // Set for jobs.
    lumina::video::v1::ReloadModelCommand reload;  // Set for reloads.
    rpc::Reply reply;                              // Set for reloads.
  };

  // rpc::WorkerLink::Delegate (reader thread; queue and return).
  lumina::video::v1::RegisterWorker Registration() override;
  void StartLease(const lumina::video::v1::ServerMessage& assignment,
                  std::shared_ptr<rpc::Lease> lease) override;
  void OnReload(const lumina::video::v1::ReloadModelCommand& reload,
                rpc::Reply reply) override;
  void FillHeartbeat(lumina::video::v1::Heartbeat* beat) override;

  // Body of the model-owner thread.
  void ModelLoop();
  // Runs one job (model-owner thread).
  void RunJob(const Task& task);
  // Runs one reload (model-owner thread).
  void RunReload(const Task& task);

  const WorkerOptions options_;
  std::unique_ptr<VideoModel> model_;  // Used by the model-owner thread only.
  JobRunner runner_;
  rpc::WorkerLink link_;

  mutable absl::Mutex mu_;
  std::deque<Task> tasks_ ABSL_GUARDED_BY(mu_);
  // Cancel token of the running job, for the destructor.
  std::shared_ptr<CancelToken> current_cancel_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  WorkerCounters counters_ ABSL_GUARDED_BY(mu_);

  std::thread model_thread_;
};

}  // namespace lvs::worker

#endif  // LVS_WORKER_WORKER_H_
