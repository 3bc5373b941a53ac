// The scheduler between the job store and the connected workers/trainers:
// keeps the registry of worker streams, hands QUEUED jobs to idle workers that
// asked for one (highest priority first, FIFO within a priority, only to a
// worker whose capabilities fit), renews leases on heartbeats, records the
// events and chunks workers report, completes or re-queues jobs, expires lost
// leases on Tick(), routes cancellations and model reloads.
//
// It never waits for a worker: every method records what happened and sends
// messages through WorkerConnection::Send(), which only queues them. Nor does
// it wait for the disk: every store change goes to the store's writer and the
// dispatcher continues from its completion (on the store's completion thread,
// in submission order). A worker stream reads its next message once its
// change is committed (so a worker stream has one message in the store at a
// time: the writer's backlog is bounded by the number of workers, and a
// chunk is acknowledged only once stored). Leasing runs in rounds, one in
// flight at a time: the idle workers that asked for a job are leased in one
// store change and each assignment is sent only once its lease is on disk;
// a lease whose worker left (or was drained, or leasing stopped) meanwhile is
// handed back without using an attempt. A worker is freed in memory when its
// lease is released, before the release is on disk; should that write fail,
// the job stays RUNNING in the store until its lease expires, and Tick()
// re-queues it. Time comes from the store's Clock, so tests drive lease
// expiry with a FakeClock.
//
// Thread-safety: thread-safe; one mutex, never held while waiting. Lock
// order: Dispatcher -> JobStore; EventHub notifications run after the mutex
// is released. Store completions take the mutex themselves.
#ifndef LVS_SERVER_DISPATCHER_H_
#define LVS_SERVER_DISPATCHER_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lumina/video/v1/admin_service.pb.h"
#include "lumina/video/v1/worker_service.pb.h"
#include "server/clock.h"
#include "server/event_hub.h"
#include "server/job_store.h"
#include "server/server_metrics.h"

namespace lvs::server {

// The sending half of one worker stream.
class WorkerConnection {
 public:
  virtual ~WorkerConnection() = default;
  // Queues `message` for the worker; never blocks.
  virtual void Send(const v1::ServerMessage& message) = 0;
};

// Timing of the worker protocol.
struct DispatcherOptions {
  // Workers heartbeat this often while holding a lease.
  absl::Duration heartbeat_interval = absl::Seconds(5);
  // A ReloadModel call gives up on workers that did not answer by then.
  absl::Duration reload_timeout = absl::Minutes(10);
  // Video jobs of one owner that may run at once (0 or unset: no limit);
  // queued jobs beyond it wait while other owners' jobs are leased.
  std::function<int64_t(const std::string& owner)> owner_max_running;
};

// See the file comment.
class Dispatcher {
 public:
  // Answers a ReloadModel call once every addressed worker replied.
  using ReloadDone = std::function<void(const v1::ReloadModelResponse&)>;

  Dispatcher(JobStore* store, Clock* clock, EventHub* hub,
             ServerMetrics* metrics, DispatcherOptions options);
  // Stops leasing and waits for the store completions that call back into
  // the dispatcher.
  ~Dispatcher();

  // Registers a worker stream (INVALID_ARGUMENT for a bad registration) and
  // answers Registered. A name held by a stream heard from within the lease
  // duration is refused (ALREADY_EXISTS). A silent one belongs to a process
  // that died without its stream noticing yet (kill -9, lost network): the new
  // stream replaces it and the old one's lease is released.
  absl::Status Register(const v1::RegisterWorker& registration,
                        WorkerConnection* connection);

  // Forgets a worker whose stream ended; its lease is released (the job is
  // re-queued or fails when out of attempts). With `connection`, only if the
  // name still belongs to that stream.
  void Unregister(const std::string& worker,
                  const WorkerConnection* connection = nullptr);

  // Handles one message of a registered worker. With `connection`, messages
  // of a replaced stream are ignored. `read_next`, when set, runs once the
  // message is handled: at once, or after its store change is committed
  // (the stream's flow control).
  void OnMessage(const std::string& worker, const v1::WorkerMessage& message,
                 const WorkerConnection* connection = nullptr,
                 std::function<void()> read_next = nullptr);

  // Leases queued jobs to waiting workers (after an admission).
  void Dispatch();

  // Tells the worker that holds the revoked lease of a cancelled job.
  void OnCancelled(const CancelResult& cancelled);

  // Expires lost leases and collects expired results; call periodically.
  void Tick();

  // Stops or resumes leasing jobs (server drain).
  void SetLeasing(bool enabled);

  // Number of workers holding a lease.
  int BusyWorkers();

  // Snapshot of the connected workers.
  std::vector<v1::Worker> ListWorkers();

  // Stops leasing to `worker` and tells it to finish and leave.
  absl::StatusOr<v1::Worker> DrainWorker(const std::string& worker);

  // Sends a reload of `checkpoint` (and of the VAE directory `vae` unless
  // empty) to `workers` (all generators when empty); `done` runs once each
  // answered, disconnected or timed out.
  absl::Status Reload(const std::vector<std::string>& workers,
                      const std::string& checkpoint, bool use_ema,
                      const std::string& vae, ReloadDone done);

 private:
  struct Lease {
    std::string job;
    std::string owner;
    std::string lease_id;
    JobKind kind = JobKind::kVideo;
    absl::Time queued = absl::InfinitePast();  // The job's creation time.
    absl::Time leased = absl::InfinitePast();  // The job's start time.
    absl::Time start = absl::InfinitePast();
    absl::Time last_step = absl::InfinitePast();
    bool first_chunk = false;
    v1::VideoJobProgress progress;
  };
  struct Worker {
    v1::RegisterWorker registration;
    WorkerConnection* connection = nullptr;
    absl::Time connect_time;
    absl::Time last_heartbeat;
    int64_t gpu_memory_used = 0;
    int64_t jobs_done = 0;
    bool wants_lease = false;
    bool draining = false;
    std::optional<Lease> lease;
    // Tells this stream's registration from a later one under the same name.
    uint64_t generation = 0;
  };
  // A worker named in a lease round.
  struct Asker {
    std::string name;
    uint64_t generation = 0;
  };
  struct PendingReload {
    std::map<std::string, v1::WorkerReload> results;  // By worker.
    int waiting = 0;
    absl::Time deadline;
    ReloadDone done;
  };

  // What a handler leaves to run once mu_ is released. (The followers of
  // the jobs it changed are woken by the store once the change commits.)
  struct Touched {
    // Reload answers, run by Notify once mu_ is released.
    std::vector<std::function<void()>> reloads_done;
  };

  // Starts a lease round for the idle workers that asked for a job, or
  // marks one to follow the round in flight.
  void DispatchLocked(Touched* touched) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Completion of a lease round: assigns each leased job to its worker, or
  // hands it back when the worker can no longer take it.
  void OnLeased(const std::vector<Asker>& askers,
                absl::StatusOr<std::vector<std::optional<JobRecord>>> leased)
      ABSL_LOCKS_EXCLUDED(mu_);
  // What worker `w` can run, as a LeaseFilter.
  static LeaseFilter FilterOf(const Worker& w);
  // Video jobs running per owner.
  std::map<std::string, int64_t> RunningByOwner() const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Assign(Worker& w, const JobRecord& job)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The registered worker `name` if it is still registration `generation`.
  Worker* Find(const std::string& name, uint64_t generation)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records a progress event or chunk; the store change is asynchronous and
  // takes `read_next` (left empty) to run once it is committed.
  void OnJobEvent(Worker& w, const v1::JobEvent& event, Touched* touched,
                  std::function<void()>* read_next)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The callback of an asynchronous store change of `w`'s lease `lease_id`:
  // a failure is handled as OnLeaseError would, then `read_next` runs.
  std::function<void(absl::Status)> AfterStore(const Worker& w,
                                               const std::string& lease_id,
                                               std::function<void()>* read_next)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Handles the failure of an asynchronous store change (no lock held).
  void OnStoreError(const std::string& name, const WorkerConnection* connection,
                    const std::string& lease_id, const absl::Status& error)
      ABSL_LOCKS_EXCLUDED(mu_);
  void OnJobResult(Worker& w, const v1::JobResult& result, Touched* touched,
                   std::function<void()>* read_next)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnTrainingReport(Worker& w, const v1::TrainingReport& report,
                        std::function<void()>* read_next)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnTrainingResult(Worker& w, const v1::TrainingResult& result,
                        Touched* touched, std::function<void()>* read_next)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Completes `w`'s lease with `result` and the event `body`; the worker is
  // freed once that is on disk, then `read_next` (taken) runs.
  void CompleteLease(Worker& w, std::string result, std::string body,
                     std::function<void()>* read_next)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Completion of CompleteLease.
  void OnCompleted(const Asker& worker, const Lease& lease,
                   absl::StatusOr<JobRecord> done) ABSL_LOCKS_EXCLUDED(mu_);
  // Completion of a release: counts the job's new state, wakes every
  // follower (the queue moved) and leases the job again if it was re-queued.
  void OnReleased(const std::string& id, absl::StatusOr<JobRecord> job)
      ABSL_LOCKS_EXCLUDED(mu_);
  void OnExpired(absl::StatusOr<std::vector<JobRecord>> expired)
      ABSL_LOCKS_EXCLUDED(mu_);
  void OnCollected(absl::StatusOr<std::vector<std::string>> deleted)
      ABSL_LOCKS_EXCLUDED(mu_);
  void OnReloadResult(const std::string& name, const v1::ReloadResult& result,
                      Touched* touched) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The worker's current lease if it is `lease_id`; otherwise tells the
  // worker to drop that lease and returns null.
  Lease* CurrentLease(Worker& w, const std::string& lease_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Handles a store error about a leased job: a fenced lease is dropped and
  // the worker told; other errors release the attempt.
  void OnLeaseError(Worker& w, const absl::Status& error, Touched* touched)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Releases the worker's lease with `error` and logs the result.
  void ReleaseLease(Worker& w, const google::rpc::Status& error, bool permanent,
                    Touched* touched) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Finished(Worker& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CountState(const JobRecord& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Answers the reloads that are complete, disconnected or past their
  // deadline (all of them when `all`): the callbacks go to `touched`.
  void FinishReloads(bool all, Touched* touched)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::Worker Describe(const Worker& w) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs reload answers; called without mu_.
  void Notify(const Touched& touched) ABSL_LOCKS_EXCLUDED(mu_);

  JobStore* const store_;
  Clock* const clock_;
  EventHub* const hub_;
  ServerMetrics* const metrics_;
  const DispatcherOptions options_;

  absl::Mutex mu_;
  std::map<std::string, Worker> workers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, PendingReload> reloads_ ABSL_GUARDED_BY(mu_);
  int64_t next_reload_ ABSL_GUARDED_BY(mu_) = 1;
  bool leasing_ ABSL_GUARDED_BY(mu_) = true;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;  // Being destroyed.
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  // A lease round is in flight; another is due once it completes.
  bool round_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool round_again_ ABSL_GUARDED_BY(mu_) = false;
  // Leases cancelled while the round that granted them was in flight: they
  // are not sent.
  std::set<std::string> revoked_in_round_ ABSL_GUARDED_BY(mu_);
  // An expiry or a collection is in flight (Tick starts one at a time).
  bool expiring_ ABSL_GUARDED_BY(mu_) = false;
  bool collecting_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace lvs::server

#endif  // LVS_SERVER_DISPATCHER_H_
