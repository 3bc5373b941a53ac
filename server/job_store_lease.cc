// JobStore: the lease lifecycle (lease, renew, events, complete, release,
// expiry, cancel) and garbage collection. Open, admission and queries are in
// job_store.cc.
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "server/job_events.h"
#include "server/job_store.h"

namespace lvs::server {
namespace {

int64_t Micros(absl::Time t) {
  return t == absl::InfinitePast() ? 0 : absl::ToUnixMicros(t);
}

int64_t State(v1::JobState state) { return static_cast<int64_t>(state); }

std::string StartedBody(const JobRecord& job, absl::Time now) {
  if (job.kind == JobKind::kVideo) {
    return EventBody<v1::GenerateVideoEvent>(
        now, [&](v1::GenerateVideoEvent& e) {
          e.mutable_started()->set_worker(job.worker);
          e.mutable_started()->set_attempt(job.attempts);
        });
  }
  return EventBody<v1::TrainingEvent>(now, [&](v1::TrainingEvent& e) {
    e.mutable_started()->set_trainer(job.worker);
    e.mutable_started()->set_attempt(job.attempts);
    e.mutable_started()->set_resumed_from_step(
        job.checkpoint ? job.checkpoint->step() : 0);
  });
}

}  // namespace

absl::StatusOr<std::optional<JobRecord>> JobStore::LeaseNext(
    JobKind kind, const std::string& worker, const LeaseFilter& filter) {
  return Write<std::optional<JobRecord>>(
      [&] { return DoLeaseNext(kind, worker, filter); });
}

void JobStore::LeaseRoundAsync(
    LeaseRound round, Callback<std::vector<std::optional<JobRecord>>> done) {
  Async<std::vector<std::optional<JobRecord>>>(
      [this, round = std::move(round)] { return DoLeaseRound(round); },
      std::move(done));
}

absl::StatusOr<std::vector<std::optional<JobRecord>>> JobStore::DoLeaseRound(
    const LeaseRound& round) {
  std::map<std::string, int64_t> running = round.running;
  auto limit = [&](const std::string& owner) -> int64_t {
    return round.owner_limit ? round.owner_limit(owner) : 0;
  };
  std::vector<std::string> at_limit;
  for (const auto& [owner, n] : running) {
    if (limit(owner) > 0 && n >= limit(owner)) at_limit.push_back(owner);
  }
  std::vector<std::optional<JobRecord>> out;
  for (const LeaseAsk& ask : round.asks) {
    LeaseFilter filter = ask.filter;
    filter.excluded_owners.insert(filter.excluded_owners.end(),
                                  at_limit.begin(), at_limit.end());
    LVS_ASSIGN_OR_RETURN(std::optional<JobRecord> job,
                         DoLeaseNext(ask.kind, ask.worker, filter));
    if (job && job->kind == JobKind::kVideo) {
      const int64_t n = ++running[job->owner];
      if (limit(job->owner) > 0 && n >= limit(job->owner)) {
        at_limit.push_back(job->owner);
      }
    }
    out.push_back(std::move(job));
  }
  return out;
}

absl::StatusOr<std::optional<JobRecord>> JobStore::DoLeaseNext(
    JobKind kind, const std::string& worker, const LeaseFilter& filter) {
  std::string where = "WHERE kind = ?1 AND state = ?2";
  if (kind == JobKind::kVideo) {
    // ?3..?5: limits (0: none); ?6..: the worker's models.
    absl::StrAppend(&where,
                    " AND (?3 = 0 OR width <= ?3) AND (?4 = 0 OR height <= ?4)"
                    " AND (?5 = 0 OR frames <= ?5) AND (model = ''");
    if (!filter.models.empty()) {
      absl::StrAppend(&where, " OR model IN (");
      for (size_t i = 0; i < filter.models.size(); ++i) {
        absl::StrAppend(&where, i == 0 ? "" : ", ", "?", 6 + i);
      }
      absl::StrAppend(&where, ")");
    }
    absl::StrAppend(&where, ")");
    // Then the owners at their limit of running jobs.
    const size_t first = 6 + filter.models.size();
    if (!filter.excluded_owners.empty()) {
      absl::StrAppend(&where, " AND owner NOT IN (");
      for (size_t i = 0; i < filter.excluded_owners.size(); ++i) {
        absl::StrAppend(&where, i == 0 ? "" : ", ", "?", first + i);
      }
      absl::StrAppend(&where, ")");
    }
  }
  absl::StrAppend(&where, " ORDER BY priority DESC, seq LIMIT 1");
  LVS_ASSIGN_OR_RETURN(
      std::vector<JobRecord> queued,
      Query(db_.get(), where, [&](SqliteStmt& st) {
        st.Bind(1, static_cast<int64_t>(kind)).Bind(2, State(v1::QUEUED));
        if (kind != JobKind::kVideo) return;
        st.Bind(3, filter.max_width)
            .Bind(4, filter.max_height)
            .Bind(5, filter.max_frames);
        for (size_t i = 0; i < filter.models.size(); ++i) {
          st.Bind(static_cast<int>(6 + i), filter.models[i]);
        }
        const size_t first = 6 + filter.models.size();
        for (size_t i = 0; i < filter.excluded_owners.size(); ++i) {
          st.Bind(static_cast<int>(first + i), filter.excluded_owners[i]);
        }
      }));
  for (JobRecord& job : queued) {
    const absl::Time now = clock_->Now();
    const JobRecord before = job;
    job.state = v1::RUNNING;
    job.attempts += 1;
    job.worker = worker;
    job.lease_id = NewId();
    job.lease_expire = now + options_.lease_duration;
    job.start_time = now;
    // A video attempt starts its progress afresh; a training job keeps its
    // last step until the trainer reports one.
    job.progress.Clear();
    LVS_RETURN_IF_ERROR(Transition(
        before, v1::RUNNING,
        "attempts = ?4, worker = ?5, lease_id = ?6, lease_expire_us = ?7, "
        "start_us = ?8, progress = CASE WHEN kind = ?9 THEN '' ELSE progress "
        "END",
        [&](SqliteStmt& st) {
          st.Bind(4, job.attempts)
              .Bind(5, worker)
              .Bind(6, job.lease_id)
              .Bind(7, Micros(job.lease_expire))
              .Bind(8, Micros(now))
              .Bind(9, static_cast<int64_t>(JobKind::kVideo));
        }));
    LVS_ASSIGN_OR_RETURN(job.last_event,
                         Insert(job.id, StartedBody(job, now), -1, 0));
    return std::optional<JobRecord>(std::move(job));
  }
  return std::optional<JobRecord>();
}

absl::Status JobStore::Renew(const std::string& id,
                             const std::string& lease_id) {
  return WriteStatus([&] { return DoRenew(id, lease_id); });
}

void JobStore::RenewAsync(std::string id, std::string lease_id,
                          std::function<void(absl::Status)> done) {
  absl::Status queued = writer_->Submit(
      [this, id = std::move(id), lease_id = std::move(lease_id)] {
        return DoRenew(id, lease_id);
      },
      std::move(done), /*bounded=*/false);
  (void)queued;  // Unbounded: refused only at shutdown, when it no longer
                 // matters.
}

absl::Status JobStore::DoRenew(const std::string& id,
                               const std::string& lease_id) {
  LVS_RETURN_IF_ERROR(LoadLeased(id, lease_id).status());
  LVS_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_->Prepare("UPDATE jobs SET lease_expire_us = ? WHERE id = ? AND "
                   "lease_id = ? AND state = ?"));
  st.Bind(1, Micros(clock_->Now() + options_.lease_duration))
      .Bind(2, id)
      .Bind(3, lease_id)
      .Bind(4, State(v1::RUNNING));
  return st.Run();
}

absl::StatusOr<int64_t> JobStore::AppendEvent(const std::string& id,
                                              const std::string& lease_id,
                                              const std::string& body,
                                              const std::string* progress,
                                              const std::string* checkpoint) {
  return Write<int64_t>(
      [&] { return DoAppendEvent(id, lease_id, body, progress, checkpoint); });
}

void JobStore::AppendEventAsync(std::string id, std::string lease_id,
                                std::string body,
                                std::optional<std::string> progress,
                                std::optional<std::string> checkpoint,
                                Callback<int64_t> done) {
  Async<int64_t>(
      [this, id = std::move(id), lease_id = std::move(lease_id),
       body = std::move(body), progress = std::move(progress),
       checkpoint = std::move(checkpoint)] {
        return DoAppendEvent(id, lease_id, body,
                             progress ? &*progress : nullptr,
                             checkpoint ? &*checkpoint : nullptr);
      },
      std::move(done));
}

absl::StatusOr<int64_t> JobStore::DoAppendEvent(const std::string& id,
                                                const std::string& lease_id,
                                                const std::string& body,
                                                const std::string* progress,
                                                const std::string* checkpoint) {
  LVS_RETURN_IF_ERROR(LoadLeased(id, lease_id).status());
  LVS_ASSIGN_OR_RETURN(int64_t seq, Insert(id, body, -1, 0));
  for (auto [column, value] :
       {std::pair<const char*, const std::string*>{"progress", progress},
        {"checkpoint", checkpoint}}) {
    if (value == nullptr) continue;
    LVS_ASSIGN_OR_RETURN(SqliteStmt st,
                         db_->Prepare(absl::StrCat("UPDATE jobs SET ", column,
                                                   " = ? WHERE id = ?")));
    st.BindBlob(1, *value).Bind(2, id);
    LVS_RETURN_IF_ERROR(st.Run());
  }
  return seq;
}

absl::StatusOr<int64_t> JobStore::AppendChunk(const std::string& id,
                                              const std::string& lease_id,
                                              int64_t offset,
                                              const std::string& data,
                                              const std::string& body) {
  return Write<int64_t>(
      [&] { return DoAppendChunk(id, lease_id, offset, data, body); });
}

void JobStore::AppendChunkAsync(std::string id, std::string lease_id,
                                int64_t offset, std::string data,
                                std::string body, Callback<int64_t> done) {
  Async<int64_t>(
      [this, id = std::move(id), lease_id = std::move(lease_id), offset,
       data = std::move(data), body = std::move(body)] {
        return DoAppendChunk(id, lease_id, offset, data, body);
      },
      std::move(done));
}

absl::StatusOr<int64_t> JobStore::DoAppendChunk(const std::string& id,
                                                const std::string& lease_id,
                                                int64_t offset,
                                                const std::string& data,
                                                const std::string& body) {
  LVS_ASSIGN_OR_RETURN(JobRecord job, LoadLeased(id, lease_id));
  if (job.kind != JobKind::kVideo) {
    return absl::InvalidArgumentError(
        absl::StrCat("job ", id, " is not a video job"));
  }
  // Synced with the batch, before its commit.
  dirty_results_.push_back(id);
  LVS_RETURN_IF_ERROR(results_.Append(id, offset, data));
  return Insert(id, body, offset, static_cast<int64_t>(data.size()));
}

absl::Status JobStore::Finish(const JobRecord& job, v1::JobState state,
                              const std::string& error,
                              const std::string& result) {
  const absl::Time now = clock_->Now();
  const int64_t expire =
      job.kind == JobKind::kVideo ? Micros(now + options_.result_ttl) : 0;
  return Transition(job, state,
                    "end_us = ?4, expire_us = ?5, lease_id = '', "
                    "lease_expire_us = 0, error = ?6, result = ?7",
                    [&](SqliteStmt& st) {
                      st.Bind(4, Micros(now))
                          .Bind(5, expire)
                          .BindBlob(6, error)
                          .BindBlob(7, result);
                    });
}

absl::StatusOr<JobRecord> JobStore::Complete(const std::string& id,
                                             const std::string& lease_id,
                                             const std::string& result,
                                             const std::string& body) {
  return Write<JobRecord>(
      [&] { return DoComplete(id, lease_id, result, body); });
}

void JobStore::CompleteAsync(std::string id, std::string lease_id,
                             std::string result, std::string body,
                             Callback<JobRecord> done) {
  Async<JobRecord>(
      [this, id = std::move(id), lease_id = std::move(lease_id),
       result = std::move(result), body = std::move(body)] {
        return DoComplete(id, lease_id, result, body);
      },
      std::move(done));
}

absl::StatusOr<JobRecord> JobStore::DoComplete(const std::string& id,
                                               const std::string& lease_id,
                                               const std::string& result,
                                               const std::string& body) {
  LVS_ASSIGN_OR_RETURN(JobRecord job, LoadLeased(id, lease_id));
  LVS_RETURN_IF_ERROR(Insert(id, body, -1, 0).status());
  LVS_RETURN_IF_ERROR(Finish(job, v1::SUCCEEDED, "", result));
  LVS_ASSIGN_OR_RETURN(std::optional<JobRecord> done, Load(id));
  return *std::move(done);
}

absl::Status JobStore::Requeue(const JobRecord& job, const std::string& reason,
                               bool uses_attempt) {
  const absl::Time now = clock_->Now();
  if (job.kind == JobKind::kVideo) {
    // The lost attempt's progress and bytes are void: the next attempt
    // streams the video again from offset 0.
    LVS_ASSIGN_OR_RETURN(SqliteStmt del,
                         db_->Prepare("DELETE FROM events WHERE job = ?"));
    del.Bind(1, job.id);
    LVS_RETURN_IF_ERROR(del.Run());
    results_.Remove(job.id);
  }
  const int attempts = uses_attempt ? job.attempts : job.attempts - 1;
  LVS_RETURN_IF_ERROR(Transition(
      job, v1::QUEUED, "lease_id = '', lease_expire_us = 0, attempts = ?4",
      [&](SqliteStmt& st) { st.Bind(4, attempts); }));
  LVS_RETURN_IF_ERROR(
      Insert(job.id,
             KindEventBody(job.kind == JobKind::kVideo, now,
                           [&](auto& e) {
                             e.mutable_requeued()->set_attempt(job.attempts);
                             e.mutable_requeued()->set_reason(reason);
                           }),
             -1, 0)
          .status());
  JobRecord queued = job;
  queued.state = v1::QUEUED;
  const int64_t position = Position(queued);
  return Insert(job.id,
                QueuedEventBody(job.kind == JobKind::kVideo, now, position), -1,
                0)
      .status();
}

absl::StatusOr<JobRecord> JobStore::Release(const std::string& id,
                                            const std::string& lease_id,
                                            const google::rpc::Status& error,
                                            bool permanent) {
  return Write<JobRecord>(
      [&] { return DoRelease(id, lease_id, error, permanent); });
}

void JobStore::ReleaseAsync(std::string id, std::string lease_id,
                            google::rpc::Status error, bool permanent,
                            Callback<JobRecord> done) {
  Async<JobRecord>(
      [this, id = std::move(id), lease_id = std::move(lease_id),
       error = std::move(error),
       permanent] { return DoRelease(id, lease_id, error, permanent); },
      std::move(done));
}

absl::StatusOr<JobRecord> JobStore::DoRelease(const std::string& id,
                                              const std::string& lease_id,
                                              const google::rpc::Status& error,
                                              bool permanent) {
  LVS_ASSIGN_OR_RETURN(JobRecord job, LoadLeased(id, lease_id));
  if (permanent || job.attempts >= options_.max_attempts) {
    LVS_RETURN_IF_ERROR(Finish(job, v1::FAILED, error.SerializeAsString(), ""));
  } else {
    LVS_RETURN_IF_ERROR(Requeue(job, error.message(), true));
  }
  LVS_ASSIGN_OR_RETURN(std::optional<JobRecord> done, Load(id));
  return *std::move(done);
}

void JobStore::ReturnLeaseAsync(std::string id, std::string lease_id,
                                std::string reason, Callback<JobRecord> done) {
  Async<JobRecord>(
      [this, id = std::move(id), lease_id = std::move(lease_id),
       reason = std::move(reason)] {
        return DoReturnLease(id, lease_id, reason);
      },
      std::move(done));
}

absl::StatusOr<JobRecord> JobStore::DoReturnLease(const std::string& id,
                                                  const std::string& lease_id,
                                                  const std::string& reason) {
  LVS_ASSIGN_OR_RETURN(JobRecord job, LoadLeased(id, lease_id));
  LVS_RETURN_IF_ERROR(Requeue(job, reason, false));
  LVS_ASSIGN_OR_RETURN(std::optional<JobRecord> done, Load(id));
  return *std::move(done);
}

absl::StatusOr<std::vector<JobRecord>> JobStore::ExpireLeases() {
  return Write<std::vector<JobRecord>>([this] { return DoExpireLeases(); });
}

void JobStore::ExpireLeasesAsync(Callback<std::vector<JobRecord>> done) {
  Async<std::vector<JobRecord>>([this] { return DoExpireLeases(); },
                                std::move(done));
}

absl::StatusOr<std::vector<JobRecord>> JobStore::DoExpireLeases() {
  const absl::Time now = clock_->Now();
  LVS_ASSIGN_OR_RETURN(
      std::vector<JobRecord> expired,
      Query(db_.get(), "WHERE state = ? AND lease_expire_us < ?",
            [&](SqliteStmt& st) {
              st.Bind(1, State(v1::RUNNING)).Bind(2, Micros(now));
            }));
  std::vector<JobRecord> out;
  for (const JobRecord& job : expired) {
    const std::string reason =
        absl::StrCat("the lease of worker ", job.worker,
                     " expired during attempt ", job.attempts);
    if (job.attempts >= options_.max_attempts) {
      google::rpc::Status error;
      error.set_code(static_cast<int>(absl::StatusCode::kAborted));
      error.set_message(absl::StrCat(reason, "; no attempts left (",
                                     options_.max_attempts, ")"));
      LVS_RETURN_IF_ERROR(
          Finish(job, v1::FAILED, error.SerializeAsString(), ""));
    } else {
      LVS_RETURN_IF_ERROR(Requeue(job, reason, true));
    }
    LVS_ASSIGN_OR_RETURN(std::optional<JobRecord> now_job, Load(job.id));
    if (now_job) out.push_back(*std::move(now_job));
  }
  return out;
}

void JobStore::CancelAsync(JobKind kind, std::string id, std::string owner,
                           std::string reason, Callback<CancelResult> done) {
  Async<CancelResult>(
      [this, kind, id = std::move(id), owner = std::move(owner),
       reason = std::move(reason)] {
        return DoCancel(kind, id, owner, reason);
      },
      std::move(done));
}

absl::StatusOr<CancelResult> JobStore::DoCancel(JobKind kind,
                                                const std::string& id,
                                                const std::string& owner,
                                                const std::string& reason) {
  LVS_ASSIGN_OR_RETURN(std::optional<JobRecord> job, Load(id));
  if (!job || job->kind != kind || (!owner.empty() && job->owner != owner)) {
    return absl::NotFoundError(
        absl::StrCat(JobName(kind, id), " does not exist"));
  }
  if (job->finished()) {
    return absl::FailedPreconditionError(
        absl::StrCat(JobName(kind, id), " has already finished (",
                     v1::JobState_Name(job->state), ")"));
  }
  CancelResult out;
  out.revoked_lease = job->lease_id;
  out.worker = job->state == v1::RUNNING ? job->worker : "";
  google::rpc::Status error;
  error.set_code(static_cast<int>(absl::StatusCode::kCancelled));
  error.set_message(reason);
  LVS_RETURN_IF_ERROR(
      Finish(*job, v1::CANCELLED, error.SerializeAsString(), ""));
  LVS_ASSIGN_OR_RETURN(std::optional<JobRecord> done, Load(id));
  out.job = *std::move(done);
  return out;
}

absl::Status JobStore::DeleteRow(const std::string& id) {
  for (const char* sql :
       {"DELETE FROM events WHERE job = ?", "DELETE FROM jobs WHERE id = ?"}) {
    LVS_ASSIGN_OR_RETURN(SqliteStmt st, db_->Prepare(sql));
    st.Bind(1, id);
    LVS_RETURN_IF_ERROR(st.Run());
  }
  results_.Remove(id);
  changed_.push_back(id);
  return absl::OkStatus();
}

void JobStore::DeleteAsync(JobKind kind, std::string id, std::string owner,
                           std::function<void(absl::Status)> done) {
  Async<bool>(
      [this, kind, id = std::move(id),
       owner = std::move(owner)]() -> absl::StatusOr<bool> {
        LVS_RETURN_IF_ERROR(DoDelete(kind, id, owner));
        return true;
      },
      [done = std::move(done)](absl::StatusOr<bool> deleted) {
        done(deleted.status());
      });
}

absl::Status JobStore::DoDelete(JobKind kind, const std::string& id,
                                const std::string& owner) {
  LVS_ASSIGN_OR_RETURN(std::optional<JobRecord> job, Load(id));
  if (!job || job->kind != kind || (!owner.empty() && job->owner != owner)) {
    return absl::NotFoundError(
        absl::StrCat(JobName(kind, id), " does not exist"));
  }
  if (!job->finished()) {
    return absl::FailedPreconditionError(
        absl::StrCat(JobName(kind, id), " is ", v1::JobState_Name(job->state),
                     "; cancel it before deleting it"));
  }
  return DeleteRow(id);
}

absl::StatusOr<std::vector<std::string>> JobStore::CollectGarbage() {
  return Write<std::vector<std::string>>([this] { return DoCollectGarbage(); });
}

void JobStore::CollectGarbageAsync(Callback<std::vector<std::string>> done) {
  Async<std::vector<std::string>>([this] { return DoCollectGarbage(); },
                                  std::move(done));
}

absl::StatusOr<std::vector<std::string>> JobStore::DoCollectGarbage() {
  std::vector<std::string> deleted;
  LVS_ASSIGN_OR_RETURN(
      std::vector<JobRecord> expired,
      Query(db_.get(), "WHERE kind = ? AND expire_us > 0 AND expire_us < ?",
            [&](SqliteStmt& st) {
              st.Bind(1, static_cast<int64_t>(JobKind::kVideo))
                  .Bind(2, Micros(clock_->Now()));
            }));
  for (const JobRecord& job : expired) {
    LVS_RETURN_IF_ERROR(DeleteRow(job.id));
    deleted.push_back(job.id);
  }
  if (options_.results_quota_bytes <= 0) return deleted;
  int64_t total = results_.TotalBytes();
  if (total <= options_.results_quota_bytes) return deleted;
  LVS_ASSIGN_OR_RETURN(
      std::vector<JobRecord> finished,
      Query(db_.get(), "WHERE kind = ? AND state IN (?, ?, ?) ORDER BY end_us",
            [](SqliteStmt& st) {
              st.Bind(1, static_cast<int64_t>(JobKind::kVideo))
                  .Bind(2, State(v1::SUCCEEDED))
                  .Bind(3, State(v1::FAILED))
                  .Bind(4, State(v1::CANCELLED));
            }));
  for (const JobRecord& job : finished) {
    if (total <= options_.results_quota_bytes) break;
    total -= job.result_bytes;
    LVS_RETURN_IF_ERROR(DeleteRow(job.id));
    deleted.push_back(job.id);
  }
  return deleted;
}

void JobStore::RequeueRunningAsync(std::string reason,
                                   Callback<std::vector<JobRecord>> done) {
  Async<std::vector<JobRecord>>(
      [this, reason = std::move(reason)] { return DoRequeueRunning(reason); },
      std::move(done));
}

absl::StatusOr<std::vector<JobRecord>> JobStore::DoRequeueRunning(
    const std::string& reason) {
  LVS_ASSIGN_OR_RETURN(std::vector<JobRecord> running,
                       Query(db_.get(), "WHERE state = ?", [](SqliteStmt& st) {
                         st.Bind(1, State(v1::RUNNING));
                       }));
  for (const JobRecord& job : running) {
    LVS_RETURN_IF_ERROR(Requeue(job, reason, false));
  }
  return running;
}

}  // namespace lvs::server
