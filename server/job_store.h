// The durable job store: video and training jobs, their event logs and the
// video results, in SQLite (`<data dir>/lvs.db`, WAL, synchronous=FULL) plus
// the results directory (`<data dir>/results/`).
//
// Every change runs on the store's one writer thread (StoreWriter), many
// changes to a transaction (group commit); a change is reported done only
// once its transaction and the result bytes it wrote are on disk, so an
// accepted job is durable before the RPC answers and a chunk before it is
// acknowledged. The *Async methods report through a callback on the store's
// completion thread, in submission order, and never block their caller (the
// server uses only these; shutdown waits for them with Flush()); the few
// others wait for their commit (tests). Reads use a second connection and
// never wait for the writer. Jobs move along the edges of
// `CheckTransition`: QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED,
// QUEUED -> CANCELLED, and RUNNING -> QUEUED when a lease is lost. Queue
// positions come from an in-memory index of the queued jobs kept by the writer,
// so a position costs no query. Every change of a leased job is fenced by its
// lease id: a call with a stale lease id fails with FAILED_PRECONDITION and
// changes nothing, so a job is never completed twice. Opening the store
// re-queues the jobs that were RUNNING when the previous process stopped.
//
// Thread-safety: thread-safe. The write connection, the id generator and the
// set of result files to sync belong to the writer thread; the read
// connection is behind `read_mu_`, the queue index behind `index_mu_`.
#ifndef LVS_SERVER_JOB_STORE_H_
#define LVS_SERVER_JOB_STORE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/rpc/status.pb.h"
#include "lumina/video/v1/common.pb.h"
#include "server/clock.h"
#include "server/queue_index.h"
#include "server/result_files.h"
#include "server/sqlite.h"
#include "server/store_writer.h"

namespace lvs::server {

namespace v1 = ::lumina::video::v1;

// Which table a job belongs to.
enum class JobKind : int { kVideo = 1, kTraining = 2 };

// One job as stored, its serialized columns parsed once when the row is read
// (or the job admitted). Times are absl::InfinitePast() when unset.
struct JobRecord {
  std::string id;
  JobKind kind = JobKind::kVideo;
  int64_t seq = 0;  // Insertion order: FIFO within a priority, pagination.
  std::string owner;
  std::string request_id;
  int priority = v1::PRIORITY_NORMAL;
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
  absl::Time create_time = absl::InfinitePast();
  absl::Time start_time = absl::InfinitePast();
  absl::Time end_time = absl::InfinitePast();
  absl::Time expire_time = absl::InfinitePast();
  int attempts = 0;
  std::string worker;
  std::string lease_id;  // Empty unless RUNNING.
  absl::Time lease_expire = absl::InfinitePast();
  int64_t last_event = 0;    // Sequence of the newest event.
  int64_t result_bytes = 0;  // Size of the result file (video jobs).
  // Why a FAILED or CANCELLED job ended.
  std::optional<google::rpc::Status> error;
  // Video jobs: the request as admitted (model defaults filled in, seed
  // fixed), the latest progress, and the result once SUCCEEDED.
  v1::GenerateVideoRequest request;
  v1::VideoJobProgress progress;
  std::optional<v1::Completed> completed;
  // Training jobs: the spec, the latest step and checkpoint, and the result
  // once SUCCEEDED.
  v1::TrainingJobSpec training_spec;
  std::optional<v1::TrainingStep> last_step;
  std::optional<v1::TrainingCheckpoint> checkpoint;
  std::optional<v1::TrainingCompleted> training_completed;

  // Whether the job has finished (SUCCEEDED, FAILED or CANCELLED).
  bool finished() const {
    return state == v1::SUCCEEDED || state == v1::FAILED ||
           state == v1::CANCELLED;
  }
};

// One entry of a job's event log: a GenerateVideoEvent or TrainingEvent with
// `time` and the payload set (a chunk's bytes live in the result file: the
// entry records where).
struct StoredEvent {
  int64_t seq = 0;
  std::string body;
  int64_t chunk_offset = -1;  // -1 unless the event is a VideoChunk.
  int64_t chunk_length = 0;
};

// Fixed behaviour of a store.
struct JobStoreOptions {
  // Holds lvs.db and results/.
  std::string data_dir = "./lvs-data";
  // How long a finished video job and its result are kept.
  absl::Duration result_ttl = absl::Hours(24);
  // Leases granted to a job before a lost lease fails it.
  int max_attempts = 3;
  // How long a lease lasts without renewal.
  absl::Duration lease_duration = absl::Seconds(30);
  // Bytes of results kept at most (0: no quota); the oldest finished
  // results are deleted first.
  int64_t results_quota_bytes = 0;
  // Admissions waiting for the writer at most; more are refused with
  // RESOURCE_EXHAUSTED.
  size_t max_pending_admissions = 4096;
  // Added before each commit (tests: a slow disk).
  absl::Duration commit_delay = absl::ZeroDuration();
};

// Whether a job may move from `from` to `to` (FAILED_PRECONDITION naming
// both otherwise). The edges: QUEUED -> RUNNING | CANCELLED; RUNNING ->
// QUEUED | SUCCEEDED | FAILED | CANCELLED. Finished states are final.
absl::Status CheckTransition(v1::JobState from, v1::JobState to);

// A job to admit.
struct NewJob {
  JobKind kind = JobKind::kVideo;
  std::string owner;
  std::string request_id;  // Empty: not idempotent.
  int priority = v1::PRIORITY_NORMAL;
  v1::GenerateVideoRequest request;   // Video jobs.
  v1::TrainingJobSpec training_spec;  // Training jobs.
};

// Admission limits checked in the admitting transaction (0: unlimited).
struct AdmitLimits {
  int64_t max_queue = 0;         // QUEUED jobs of the kind.
  int64_t owner_max_active = 0;  // QUEUED + RUNNING jobs of the owner.
  int64_t owner_max_queued = 0;  // QUEUED jobs of the owner.
};

// How an admission ended.
enum class AdmitOutcome {
  kCreated,          // A new job was stored.
  kExisting,         // Same owner and request_id: the earlier job.
  kQueueFull,        // max_queue reached.
  kOwnerActiveFull,  // owner_max_active reached.
  kOwnerQueuedFull,  // owner_max_queued reached.
};

// Result of JobStore::Admit.
struct AdmitResult {
  AdmitOutcome outcome = AdmitOutcome::kCreated;
  JobRecord job;         // Set for kCreated and kExisting.
  int64_t position = 0;  // 1-based queue position of a created job.
  int64_t limit = 0;     // The limit that was reached, otherwise.
};

// What a worker can run, matched in SQL against the capability columns
// (model, width, height, frames) written at admission. 0: no limit.
struct LeaseFilter {
  std::vector<std::string> models;  // A job naming a model must name one.
  int64_t max_width = 0;
  int64_t max_height = 0;
  int64_t max_frames = 0;
  std::vector<std::string> excluded_owners;  // Their jobs are not leased.
};

// A worker asking for a job in a lease round.
struct LeaseAsk {
  JobKind kind = JobKind::kVideo;
  std::string worker;
  LeaseFilter filter;
};

// One lease round: each ask, in order, gets the first queued job of its kind
// that fits it (LeaseNext), or none. Owners whose running video jobs reach
// their limit get no more, counting the jobs leased earlier in the round.
struct LeaseRound {
  std::vector<LeaseAsk> asks;
  // Video jobs running per owner before the round.
  std::map<std::string, int64_t> running;
  // An owner's limit of running video jobs (unset or 0: none).
  std::function<int64_t(const std::string& owner)> owner_limit;
};

// Filter of JobStore::List.
struct ListQuery {
  JobKind kind = JobKind::kVideo;
  std::string owner;                               // Empty: every owner.
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;  // Unspecified: all.
  int limit = 50;
  int64_t before_seq = 0;  // Only jobs older than this (0: from the newest).
};

// Result of JobStore::Cancel: the job and the lease it revoked, if any.
struct CancelResult {
  JobRecord job;
  std::string revoked_lease;
  std::string worker;
};

// The durable store; see the file comment.
class JobStore {
 public:
  template <typename T>
  using Callback = std::function<void(absl::StatusOr<T>)>;
  // Receives the ids of jobs whose events or state changed, and whether
  // queue positions moved (a job left the queue or entered it ahead of
  // others), once per batch.
  using ChangeObserver =
      std::function<void(const std::vector<std::string>&, bool queue_moved)>;

  // Opens (creating) `<data_dir>/lvs.db` and the results directory and
  // re-queues RUNNING jobs.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(
      const JobStoreOptions& options, Clock* clock);
  ~JobStore();

  // Called with the jobs each committed batch changed (after their
  // callbacks were queued); one call per batch, so followers are woken
  // once per commit however many changes it held.
  void SetChangeObserver(ChangeObserver observer);

  // Admits a job with a Queued event, or returns the earlier job of the same
  // owner and request_id, or reports the limit that was reached.
  absl::StatusOr<AdmitResult> Admit(const NewJob& job,
                                    const AdmitLimits& limits);
  // Admit without waiting: `done` runs on the completion thread once the job
  // is on disk. Refused at once (RESOURCE_EXHAUSTED, `done` never runs) when
  // `max_pending_admissions` already wait for the disk.
  absl::Status AdmitAsync(NewJob job, AdmitLimits limits,
                          Callback<AdmitResult> done);

  // Returns job `id` of `kind` (NOT_FOUND when absent).
  absl::StatusOr<JobRecord> Get(JobKind kind, const std::string& id);

  // Jobs matching `query`, newest first, at most `query.limit`.
  absl::StatusOr<std::vector<JobRecord>> List(const ListQuery& query);

  // 1-based queue position of a QUEUED job (0 otherwise); from memory.
  absl::StatusOr<int64_t> QueuePosition(const JobRecord& job);
  // The same by job id, as of the last change applied (0: not queued).
  int64_t QueuePosition(const std::string& id) ABSL_LOCKS_EXCLUDED(index_mu_);

  // QUEUED jobs of `kind` per priority value.
  absl::StatusOr<std::map<int, int64_t>> QueuedByPriority(JobKind kind);

  // Number of jobs of `kind` in `state`.
  absl::StatusOr<int64_t> CountState(JobKind kind, v1::JobState state);

  // Creation time of the oldest QUEUED job of `kind`, if any.
  absl::StatusOr<std::optional<absl::Time>> OldestQueued(JobKind kind);

  // Leases the first QUEUED job of `kind` (highest priority, then FIFO) that
  // matches `filter` (video jobs; training jobs ignore it) to `worker`:
  // RUNNING, a new lease id, attempts + 1 and a Started event. The filter is
  // part of the query, so any queued job that fits is found however many do
  // not. Returns nullopt when no job fits.
  absl::StatusOr<std::optional<JobRecord>> LeaseNext(JobKind kind,
                                                     const std::string& worker,
                                                     const LeaseFilter& filter);

  // Runs `round` in one change; `done` gets, per ask, the job leased to it
  // once the leases are on disk (nullopt: none fitted).
  void LeaseRoundAsync(LeaseRound round,
                       Callback<std::vector<std::optional<JobRecord>>> done);

  // Extends a lease by the lease duration from now.
  absl::Status Renew(const std::string& id, const std::string& lease_id);
  // Renew without waiting; `done` runs once it is on disk.
  void RenewAsync(std::string id, std::string lease_id,
                  std::function<void(absl::Status)> done);

  // Appends a progress event of a leased job. `progress` and `checkpoint`,
  // when given, replace the job's latest progress and checkpoint. Returns the
  // event's sequence.
  absl::StatusOr<int64_t> AppendEvent(const std::string& id,
                                      const std::string& lease_id,
                                      const std::string& body,
                                      const std::string* progress,
                                      const std::string* checkpoint);
  // AppendEvent without waiting.
  void AppendEventAsync(std::string id, std::string lease_id, std::string body,
                        std::optional<std::string> progress,
                        std::optional<std::string> checkpoint,
                        Callback<int64_t> done);

  // Appends MP4 bytes at `offset` to the result of a leased video job and a
  // chunk event whose body is `body` (a GenerateVideoEvent without the
  // bytes). Offsets must be contiguous.
  absl::StatusOr<int64_t> AppendChunk(const std::string& id,
                                      const std::string& lease_id,
                                      int64_t offset, const std::string& data,
                                      const std::string& body);
  // AppendChunk without waiting: `done` runs once the bytes and the event
  // are on disk.
  void AppendChunkAsync(std::string id, std::string lease_id, int64_t offset,
                        std::string data, std::string body,
                        Callback<int64_t> done);

  // Finishes a leased job as SUCCEEDED with `result` and the event `body`.
  absl::StatusOr<JobRecord> Complete(const std::string& id,
                                     const std::string& lease_id,
                                     const std::string& result,
                                     const std::string& body);
  // Complete without waiting.
  void CompleteAsync(std::string id, std::string lease_id, std::string result,
                     std::string body, Callback<JobRecord> done);

  // Ends a lease that failed: FAILED with `error` when `permanent` or out of
  // attempts, otherwise back to QUEUED (a Requeued and a Queued event; the
  // lost attempt's events and result bytes are discarded).
  absl::StatusOr<JobRecord> Release(const std::string& id,
                                    const std::string& lease_id,
                                    const google::rpc::Status& error,
                                    bool permanent);
  // Release without waiting.
  void ReleaseAsync(std::string id, std::string lease_id,
                    google::rpc::Status error, bool permanent,
                    Callback<JobRecord> done);
  // Puts a leased job back to QUEUED without using an attempt (a lease that
  // never reached its worker).
  void ReturnLeaseAsync(std::string id, std::string lease_id,
                        std::string reason, Callback<JobRecord> done);

  // Releases every lease that expired before now; returns the jobs changed.
  absl::StatusOr<std::vector<JobRecord>> ExpireLeases();
  // ExpireLeases without waiting.
  void ExpireLeasesAsync(Callback<std::vector<JobRecord>> done);

  // Cancels a QUEUED or RUNNING job (FAILED_PRECONDITION once finished).
  // `owner` empty matches every owner.
  void CancelAsync(JobKind kind, std::string id, std::string owner,
                   std::string reason, Callback<CancelResult> done);

  // Deletes a finished job, its events and its result.
  void DeleteAsync(JobKind kind, std::string id, std::string owner,
                   std::function<void(absl::Status)> done);

  // Up to `limit` events of job `id` after sequence `after_seq`.
  absl::StatusOr<std::vector<StoredEvent>> ReadEvents(const std::string& id,
                                                      int64_t after_seq,
                                                      int limit);

  // Queries run on the read connection so far (Get, List, ReadEvents,
  // CountState of a state other than QUEUED, OldestQueued); result file
  // reads and positions from the queue index are not counted. A counter for
  // the metrics and for tests of how often followers read the store.
  int64_t reads() const { return reads_.load(std::memory_order_relaxed); }

  // Reads result bytes of job `id`.
  absl::StatusOr<std::string> ReadResult(const std::string& id, int64_t offset,
                                         int64_t length);

  // Deletes finished video jobs past their expire time, then the oldest
  // finished results while over the quota. Returns the ids deleted.
  absl::StatusOr<std::vector<std::string>> CollectGarbage();
  // CollectGarbage without waiting.
  void CollectGarbageAsync(Callback<std::vector<std::string>> done);

  // Puts every RUNNING job back to QUEUED without using an attempt (server
  // shutdown; Open() does the same on the writer before it returns); `done`
  // gets the jobs changed, as they were before.
  void RequeueRunningAsync(std::string reason,
                           Callback<std::vector<JobRecord>> done);

  // Waits until every change submitted so far is on disk and its callback
  // ran (tests, shutdown).
  void Flush();

  // Changes the delay added before each commit (tests: a slow disk).
  void SetCommitDelay(absl::Duration delay);
  // Makes every commit fail with `error` until called with OK (tests: a
  // failing disk).
  void SetCommitError(absl::Status error);

  // The options the store was opened with.
  const JobStoreOptions& options() const { return options_; }

 private:
  JobStore(const JobStoreOptions& options, Clock* clock,
           std::unique_ptr<SqliteDb> db, std::unique_ptr<SqliteDb> read_db);

  // Runs `fn` on the writer thread in the next batch and waits for its
  // commit.
  template <typename T>
  absl::StatusOr<T> Write(std::function<absl::StatusOr<T>()> fn);
  absl::Status WriteStatus(std::function<absl::Status()> fn);
  // Runs `fn` on the writer thread; `done` gets its value once committed.
  template <typename T>
  absl::Status WriteAsync(std::function<absl::StatusOr<T>()> fn,
                          Callback<T> done, bool bounded);
  // An unbounded WriteAsync; when the writer refuses it (shutdown), `done`
  // still runs with the refusal on the completion thread, never on the
  // caller's (which may hold a lock that `done` takes).
  template <typename T>
  void Async(std::function<absl::StatusOr<T>()> fn, Callback<T> done);

  // The bodies of the changes; writer thread only.
  absl::StatusOr<AdmitResult> DoAdmit(const NewJob& job,
                                      const AdmitLimits& limits);
  absl::Status DoRenew(const std::string& id, const std::string& lease_id);
  absl::StatusOr<int64_t> DoAppendEvent(const std::string& id,
                                        const std::string& lease_id,
                                        const std::string& body,
                                        const std::string* progress,
                                        const std::string* checkpoint);
  absl::StatusOr<int64_t> DoAppendChunk(const std::string& id,
                                        const std::string& lease_id,
                                        int64_t offset, const std::string& data,
                                        const std::string& body);
  absl::StatusOr<std::optional<JobRecord>> DoLeaseNext(
      JobKind kind, const std::string& worker, const LeaseFilter& filter);
  absl::StatusOr<std::vector<std::optional<JobRecord>>> DoLeaseRound(
      const LeaseRound& round);
  absl::StatusOr<JobRecord> DoComplete(const std::string& id,
                                       const std::string& lease_id,
                                       const std::string& result,
                                       const std::string& body);
  absl::StatusOr<JobRecord> DoRelease(const std::string& id,
                                      const std::string& lease_id,
                                      const google::rpc::Status& error,
                                      bool permanent);
  absl::StatusOr<JobRecord> DoReturnLease(const std::string& id,
                                          const std::string& lease_id,
                                          const std::string& reason);
  absl::StatusOr<std::vector<JobRecord>> DoExpireLeases();
  absl::StatusOr<CancelResult> DoCancel(JobKind kind, const std::string& id,
                                        const std::string& owner,
                                        const std::string& reason);
  absl::StatusOr<std::vector<std::string>> DoCollectGarbage();
  absl::Status DoDelete(JobKind kind, const std::string& id,
                        const std::string& owner);
  absl::StatusOr<std::vector<JobRecord>> DoRequeueRunning(
      const std::string& reason);
  // Adds and fills the capability columns of a database created without them.
  absl::Status AddCapabilityColumns();
  // Writes the capability columns of video job `id` from its request.
  absl::Status WriteCapabilities(const std::string& id,
                                 const v1::GenerateVideoRequest& request);
  // Syncs the result files written in the batch (before its commit).
  absl::Status SyncResults();
  // After a batch: rebuilds the queue index when anything failed and tells
  // the observer which jobs changed.
  void AfterBatch(bool ok);
  // Reloads the queue index from the database (writer thread).
  absl::Status RebuildIndex();

  // Helpers of the changes; writer thread only (they use `db_`).
  absl::StatusOr<std::optional<JobRecord>> Load(const std::string& id);
  absl::StatusOr<JobRecord> LoadLeased(const std::string& id,
                                       const std::string& lease_id);
  absl::StatusOr<int64_t> Insert(const std::string& id, const std::string& body,
                                 int64_t chunk_offset, int64_t chunk_length);
  // Moves `job` to `to` after CheckTransition, setting the columns of
  // `set_sql` (parameters from ?4, bound by `bind`); the row must still be
  // in `job.state`. Keeps the queue index.
  absl::Status Transition(const JobRecord& job, v1::JobState to,
                          const std::string& set_sql,
                          const std::function<void(SqliteStmt&)>& bind);
  absl::Status Requeue(const JobRecord& job, const std::string& reason,
                       bool uses_attempt);
  absl::Status Finish(const JobRecord& job, v1::JobState state,
                      const std::string& error, const std::string& result);
  absl::Status DeleteRow(const std::string& id);
  std::string NewId();
  // Position of a job from the index.
  int64_t Position(const JobRecord& job);

  // Rows of `jobs` matching `where_sql` on connection `db`.
  absl::StatusOr<std::vector<JobRecord>> Query(
      SqliteDb* db, const std::string& where_sql,
      const std::function<void(SqliteStmt&)>& bind);
  // Query on the read connection.
  absl::StatusOr<std::vector<JobRecord>> ReadQuery(
      const std::string& where_sql,
      const std::function<void(SqliteStmt&)>& bind)
      ABSL_LOCKS_EXCLUDED(read_mu_);

  const JobStoreOptions options_;
  Clock* const clock_;
  // Writer thread only.
  std::unique_ptr<SqliteDb> db_;
  ResultFiles results_;  // Stateless over its directory.
  absl::BitGen rng_;
  std::vector<std::string> dirty_results_;  // Written in the open batch.
  std::vector<std::string> changed_;        // Jobs changed in the open batch.
  bool queue_moved_ = false;  // Positions moved in the open batch.

  absl::Mutex commit_error_mu_;
  absl::Status commit_error_ ABSL_GUARDED_BY(commit_error_mu_);

  absl::Mutex read_mu_;
  std::unique_ptr<SqliteDb> read_db_ ABSL_GUARDED_BY(read_mu_);
  std::atomic<int64_t> reads_{0};  // See reads().

  absl::Mutex index_mu_;
  QueueIndex index_ ABSL_GUARDED_BY(index_mu_);

  absl::Mutex observer_mu_;
  ChangeObserver observer_ ABSL_GUARDED_BY(observer_mu_);

  std::unique_ptr<StoreWriter> writer_;  // Last: stops first.
};

template <typename T>
absl::StatusOr<T> JobStore::Write(std::function<absl::StatusOr<T>()> fn) {
  std::optional<absl::StatusOr<T>> out;
  absl::Status committed = writer_->Call([&] {
    out = fn();
    return out->status();
  });
  if (!committed.ok()) return committed;
  return *std::move(*out);
}

template <typename T>
absl::Status JobStore::WriteAsync(std::function<absl::StatusOr<T>()> fn,
                                  Callback<T> done, bool bounded) {
  auto out = std::make_shared<std::optional<absl::StatusOr<T>>>();
  return writer_->Submit(
      [out, fn = std::move(fn)] {
        *out = fn();
        return (*out)->status();
      },
      [out, done = std::move(done)](absl::Status committed) {
        if (!committed.ok()) {
          done(committed);
        } else {
          done(*std::move(**out));
        }
      },
      bounded);
}

template <typename T>
void JobStore::Async(std::function<absl::StatusOr<T>()> fn, Callback<T> done) {
  absl::Status queued = WriteAsync<T>(std::move(fn), done, /*bounded=*/false);
  if (!queued.ok()) writer_->Post([done, queued] { done(queued); });
}

// Writes `id`'s resource name: "jobs/{id}" or "trainingJobs/{id}".
std::string JobName(JobKind kind, const std::string& id);

// Parses a resource name of `kind` into its id (INVALID_ARGUMENT naming
// `field` when malformed).
absl::StatusOr<std::string> ParseJobName(JobKind kind, const std::string& name,
                                         const std::string& field);

}  // namespace lvs::server

#endif  // LVS_SERVER_JOB_STORE_H_
