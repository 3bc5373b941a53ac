// The durable job store: video and training jobs, their event logs and the
// video results, in SQLite (`<data dir>/lvs.db`, WAL, synchronous=FULL) plus
// the results directory (`<data dir>/results/`).
//
// Every state change is one transaction, committed before the call returns,
// so an accepted job is on disk before the RPC answers. Jobs move
// QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED, and RUNNING -> QUEUED
// when a lease is lost. Every change of a leased job is fenced by its lease id:
// a call with a stale lease id fails with FAILED_PRECONDITION and changes
// nothing, so a job is never completed twice. Opening the store re-queues the
// jobs that were RUNNING when the previous process stopped.
//
// Thread-safety: thread-safe; one connection behind a mutex.
#ifndef LVS_SERVER_JOB_STORE_H_
#define LVS_SERVER_JOB_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
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
#include "server/result_files.h"
#include "server/sqlite.h"

namespace lvs::server {

namespace v1 = ::lumina::video::v1;

// Which table a job belongs to.
enum class JobKind : int { kVideo = 1, kTraining = 2 };

// One job as stored. Times are absl::InfinitePast() when unset.
struct JobRecord {
  std::string id;
  JobKind kind = JobKind::kVideo;
  int64_t seq = 0;  // Insertion order: FIFO within a priority, pagination.
  std::string owner;
  std::string request_id;
  int priority = v1::PRIORITY_NORMAL;
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
  std::string spec;  // GenerateVideoRequest or TrainingJobSpec bytes.
  absl::Time create_time = absl::InfinitePast();
  absl::Time start_time = absl::InfinitePast();
  absl::Time end_time = absl::InfinitePast();
  absl::Time expire_time = absl::InfinitePast();
  int attempts = 0;
  std::string worker;
  std::string lease_id;  // Empty unless RUNNING.
  absl::Time lease_expire = absl::InfinitePast();
  std::string error;         // google.rpc.Status bytes.
  std::string result;        // Completed or TrainingCompleted bytes.
  std::string progress;      // VideoJobProgress or TrainingStep bytes.
  std::string checkpoint;    // TrainingCheckpoint bytes (training jobs).
  int64_t last_event = 0;    // Sequence of the newest event.
  int64_t result_bytes = 0;  // Size of the result file (video jobs).

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
};

// A job to admit.
struct NewJob {
  JobKind kind = JobKind::kVideo;
  std::string owner;
  std::string request_id;  // Empty: not idempotent.
  int priority = v1::PRIORITY_NORMAL;
  std::string spec;
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
  // Opens (creating) `<data_dir>/lvs.db` and the results directory and
  // re-queues RUNNING jobs.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(
      const JobStoreOptions& options, Clock* clock);

  // Admits a job with a Queued event, or returns the earlier job of the same
  // owner and request_id, or reports the limit that was reached.
  absl::StatusOr<AdmitResult> Admit(const NewJob& job,
                                    const AdmitLimits& limits);

  // Returns job `id` of `kind` (NOT_FOUND when absent).
  absl::StatusOr<JobRecord> Get(JobKind kind, const std::string& id);

  // Jobs matching `query`, newest first, at most `query.limit`.
  absl::StatusOr<std::vector<JobRecord>> List(const ListQuery& query);

  // 1-based queue position of a QUEUED job (0 otherwise).
  absl::StatusOr<int64_t> QueuePosition(const JobRecord& job);

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

  // Extends a lease by the lease duration from now.
  absl::Status Renew(const std::string& id, const std::string& lease_id);

  // Appends a progress event of a leased job. `progress` and `checkpoint`,
  // when given, replace the job's latest progress and checkpoint. Returns the
  // event's sequence.
  absl::StatusOr<int64_t> AppendEvent(const std::string& id,
                                      const std::string& lease_id,
                                      const std::string& body,
                                      const std::string* progress,
                                      const std::string* checkpoint);

  // Appends MP4 bytes at `offset` to the result of a leased video job and a
  // chunk event whose body is `body` (a GenerateVideoEvent without the
  // bytes). Offsets must be contiguous.
  absl::StatusOr<int64_t> AppendChunk(const std::string& id,
                                      const std::string& lease_id,
                                      int64_t offset, const std::string& data,
                                      const std::string& body);

  // Finishes a leased job as SUCCEEDED with `result` and the event `body`.
  absl::StatusOr<JobRecord> Complete(const std::string& id,
                                     const std::string& lease_id,
                                     const std::string& result,
                                     const std::string& body);

  // Ends a lease that failed: FAILED with `error` when `permanent` or out of
  // attempts, otherwise back to QUEUED (a Requeued and a Queued event; the
  // lost attempt's events and result bytes are discarded).
  absl::StatusOr<JobRecord> Release(const std::string& id,
                                    const std::string& lease_id,
                                    const google::rpc::Status& error,
                                    bool permanent);

  // Releases every lease that expired before now; returns the jobs changed.
  absl::StatusOr<std::vector<JobRecord>> ExpireLeases();

  // Cancels a QUEUED or RUNNING job (FAILED_PRECONDITION once finished).
  // `owner` empty matches every owner.
  absl::StatusOr<CancelResult> Cancel(JobKind kind, const std::string& id,
                                      const std::string& owner,
                                      const std::string& reason);

  // Deletes a finished job, its events and its result.
  absl::Status Delete(JobKind kind, const std::string& id,
                      const std::string& owner);

  // Up to `limit` events of job `id` after sequence `after_seq`.
  absl::StatusOr<std::vector<StoredEvent>> ReadEvents(const std::string& id,
                                                      int64_t after_seq,
                                                      int limit);

  // Reads result bytes of job `id`.
  absl::StatusOr<std::string> ReadResult(const std::string& id, int64_t offset,
                                         int64_t length);

  // Deletes finished video jobs past their expire time, then the oldest
  // finished results while over the quota. Returns the ids deleted.
  absl::StatusOr<std::vector<std::string>> CollectGarbage();

  // Puts every RUNNING job back to QUEUED without using an attempt (server
  // restart or shutdown). Returns the jobs changed.
  absl::StatusOr<std::vector<JobRecord>> RequeueRunning(
      const std::string& reason);

  // The options the store was opened with.
  const JobStoreOptions& options() const { return options_; }

 private:
  // Adds and fills the capability columns of a database created without them.
  absl::Status AddCapabilityColumns() ABSL_LOCKS_EXCLUDED(mu_);
  // Writes the capability columns of video job `id` from its request.
  absl::Status WriteCapabilities(const std::string& id, const std::string& spec)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  JobStore(const JobStoreOptions& options, Clock* clock,
           std::unique_ptr<SqliteDb> db);

  absl::StatusOr<std::optional<JobRecord>> Load(const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<JobRecord> LoadLeased(const std::string& id,
                                       const std::string& lease_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int64_t> Insert(const std::string& id, const std::string& body,
                                 int64_t chunk_offset, int64_t chunk_length)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int64_t> Position(const JobRecord& job)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Requeue(const JobRecord& job, const std::string& reason,
                       bool uses_attempt) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Finish(const JobRecord& job, v1::JobState state,
                      const std::string& error, const std::string& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DeleteRow(const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<JobRecord>> Query(
      const std::string& where_sql,
      const std::function<void(SqliteStmt&)>& bind)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NewId() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const JobStoreOptions options_;
  Clock* const clock_;
  absl::Mutex mu_;
  std::unique_ptr<SqliteDb> db_ ABSL_GUARDED_BY(mu_);
  ResultFiles results_ ABSL_GUARDED_BY(mu_);
  absl::BitGen rng_ ABSL_GUARDED_BY(mu_);
};

// Writes `id`'s resource name: "jobs/{id}" or "trainingJobs/{id}".
std::string JobName(JobKind kind, const std::string& id);

// Parses a resource name of `kind` into its id (INVALID_ARGUMENT naming
// `field` when malformed).
absl::StatusOr<std::string> ParseJobName(JobKind kind, const std::string& name,
                                         const std::string& field);

}  // namespace lvs::server

#endif  // LVS_SERVER_JOB_STORE_H_
