#include "server/dispatcher.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "server/job_log.h"

namespace lvs::server {
namespace {

google::rpc::Status RpcStatus(absl::StatusCode code, const std::string& msg) {
  google::rpc::Status s;
  s.set_code(static_cast<int>(code));
  s.set_message(msg);
  return s;
}

v1::ServerMessage CancelMessage(const std::string& lease_id,
                                const std::string& reason) {
  v1::ServerMessage m;
  m.mutable_cancel()->set_lease_id(lease_id);
  m.mutable_cancel()->set_reason(reason);
  return m;
}

}  // namespace

Dispatcher::Dispatcher(JobStore* store, Clock* clock, EventHub* hub,
                       ServerMetrics* metrics, DispatcherOptions options)
    : store_(store),
      clock_(clock),
      hub_(hub),
      metrics_(metrics),
      options_(options) {
  // Followers of a job are woken once per commit that changed it; the
  // followers of queued jobs get their new position when the queue moved.
  store_->SetChangeObserver(
      [hub, store](const std::vector<std::string>& ids, bool queue_moved) {
        for (const std::string& id : ids) hub->Notify(id);
        if (queue_moved) {
          hub->PushPositions([store](const std::string& id) {
            return store->QueuePosition(id);
          });
        }
      });
  metrics_->registry->AddCollector([this] {
    absl::MutexLock lock(&mu_);
    std::map<std::pair<std::string, std::string>, int> by_kind_state;
    for (const char* kind : {"generator", "trainer"}) {
      for (const char* state : {"idle", "busy", "draining"}) {
        by_kind_state[{kind, state}] = 0;
      }
    }
    metrics_->worker_gpu_memory_bytes->Clear();
    for (const auto& [name, w] : workers_) {
      const char* kind = w.registration.kind() == v1::WORKER_KIND_TRAINER
                             ? "trainer"
                             : "generator";
      by_kind_state[{kind, w.draining ? "draining"
                           : w.lease  ? "busy"
                                      : "idle"}] += 1;
      metrics_->worker_gpu_memory_bytes->Set({name}, w.gpu_memory_used);
    }
    for (const auto& [key, n] : by_kind_state) {
      metrics_->workers->Set({key.first, key.second}, n);
    }
  });
}

Dispatcher::~Dispatcher() {
  {
    absl::MutexLock lock(&mu_);
    leasing_ = false;
    stopping_ = true;
  }
  // A lease round's completion may hand leases back, whose completions
  // start nothing more once leasing stopped.
  store_->Flush();
  store_->Flush();
}

void Dispatcher::Notify(const Touched& touched) {
  for (const std::function<void()>& done : touched.reloads_done) done();
}

void Dispatcher::CountState(const JobRecord& job) {
  (job.kind == JobKind::kVideo ? metrics_->jobs_total
                               : metrics_->training_jobs_total)
      ->Add({v1::JobState_Name(job.state)}, 1);
  LogJobState(job);
}

absl::Status Dispatcher::Register(const v1::RegisterWorker& registration,
                                  WorkerConnection* connection) {
  const std::string& name = registration.name();
  if (name.empty() || name.size() > 128) {
    return absl::InvalidArgumentError("register.name: must be 1 to 128 bytes");
  }
  if (registration.kind() != v1::WORKER_KIND_GENERATOR &&
      registration.kind() != v1::WORKER_KIND_TRAINER) {
    return absl::InvalidArgumentError(
        "register.kind: must be WORKER_KIND_GENERATOR or WORKER_KIND_TRAINER");
  }
  Touched touched;
  {
    absl::MutexLock lock(&mu_);
    auto old = workers_.find(name);
    if (old != workers_.end() && clock_->Now() - old->second.last_heartbeat <
                                     store_->options().lease_duration) {
      // Workers heartbeat even when idle: this name belongs to a live
      // process, and a second one under it would steal its jobs.
      return absl::AlreadyExistsError(absl::StrCat(
          "a worker named ", name, " is already connected (last heard ",
          absl::FormatDuration(clock_->Now() - old->second.last_heartbeat),
          " ago); names must be unique"));
    }
    if (old != workers_.end()) {
      if (old->second.lease) {
        ReleaseLease(old->second,
                     RpcStatus(absl::StatusCode::kUnavailable,
                               absl::StrCat("worker ", name,
                                            " reconnected; its old stream is "
                                            "gone")),
                     false, &touched);
      }
      LogEvent("worker_replaced", {{"worker_id", name}});
      workers_.erase(old);
    }
    Worker& w = workers_[name];
    w.registration = registration;
    w.connection = connection;
    w.generation = next_generation_++;
    w.connect_time = w.last_heartbeat = clock_->Now();
    v1::ServerMessage reply;
    reply.mutable_registered()->set_name(name);
    common::ToProto(store_->options().lease_duration,
                    reply.mutable_registered()->mutable_lease_duration());
    common::ToProto(options_.heartbeat_interval,
                    reply.mutable_registered()->mutable_heartbeat_interval());
    connection->Send(reply);
    LogEvent("worker_connected",
             {{"worker_id", name},
              {"kind", v1::WorkerKind_Name(registration.kind())},
              {"device", registration.capabilities().device()},
              {"model_version", registration.capabilities().model_version()}});
    DispatchLocked(&touched);
  }
  Notify(touched);
  return absl::OkStatus();
}

void Dispatcher::Unregister(const std::string& name,
                            const WorkerConnection* connection) {
  Touched touched;
  {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(name);
    if (it == workers_.end()) return;
    if (connection != nullptr && it->second.connection != connection) return;
    if (it->second.lease) {
      ReleaseLease(it->second,
                   RpcStatus(absl::StatusCode::kUnavailable,
                             absl::StrCat("worker ", name, " disconnected")),
                   false, &touched);
    }
    workers_.erase(it);
    LogEvent("worker_disconnected", {{"worker_id", name}});
    FinishReloads(false, &touched);
    DispatchLocked(&touched);
  }
  Notify(touched);
}

LeaseFilter Dispatcher::FilterOf(const Worker& w) {
  const v1::WorkerCapabilities& caps = w.registration.capabilities();
  LeaseFilter f;
  f.models.assign(caps.models().begin(), caps.models().end());
  f.max_width = caps.max_width();
  f.max_height = caps.max_height();
  f.max_frames = caps.max_frames();
  return f;
}

std::map<std::string, int64_t> Dispatcher::RunningByOwner() const {
  std::map<std::string, int64_t> running;
  for (const auto& [name, w] : workers_) {
    if (w.lease && w.lease->kind == JobKind::kVideo) ++running[w.lease->owner];
  }
  return running;
}

Dispatcher::Worker* Dispatcher::Find(const std::string& name,
                                     uint64_t generation) {
  auto it = workers_.find(name);
  if (it == workers_.end() || it->second.generation != generation) {
    return nullptr;
  }
  return &it->second;
}

void Dispatcher::Assign(Worker& w, const JobRecord& job) {
  const absl::Time now = clock_->Now();
  Lease lease;
  lease.job = job.id;
  lease.owner = job.owner;
  lease.lease_id = job.lease_id;
  lease.kind = job.kind;
  lease.queued = job.create_time;
  lease.leased = job.start_time;
  lease.start = lease.last_step = now;
  w.lease = lease;
  w.wants_lease = false;
  v1::ServerMessage m;
  if (job.kind == JobKind::kVideo) {
    v1::JobAssignment* a = m.mutable_assignment();
    a->set_lease_id(job.lease_id);
    a->set_job(JobName(job.kind, job.id));
    *a->mutable_request() = job.request;
    a->set_attempt(job.attempts);
    common::ToProto(job.lease_expire, a->mutable_lease_expire_time());
    metrics_->queue_wait_seconds->Observe(
        {}, absl::ToDoubleSeconds(now - job.create_time));
  } else {
    v1::TrainingAssignment* a = m.mutable_training_assignment();
    a->set_lease_id(job.lease_id);
    a->set_job(JobName(job.kind, job.id));
    *a->mutable_spec() = job.training_spec;
    a->set_attempt(job.attempts);
    if (job.checkpoint) *a->mutable_resume_from() = *job.checkpoint;
    common::ToProto(job.lease_expire, a->mutable_lease_expire_time());
  }
  w.connection->Send(m);
  CountState(job);
}

void Dispatcher::DispatchLocked(Touched* touched) {
  (void)touched;  // Leases are assigned, and their jobs touched, in OnLeased.
  if (!leasing_) return;
  if (round_in_flight_) {
    round_again_ = true;
    return;
  }
  LeaseRound round;
  std::vector<Asker> askers;
  for (const auto& [name, w] : workers_) {
    if (!w.wants_lease || w.draining || w.lease) continue;
    const JobKind kind = w.registration.kind() == v1::WORKER_KIND_TRAINER
                             ? JobKind::kTraining
                             : JobKind::kVideo;
    round.asks.push_back({kind, name, FilterOf(w)});
    askers.push_back({name, w.generation});
  }
  if (askers.empty()) return;
  round.running = RunningByOwner();
  round.owner_limit = options_.owner_max_running;
  round_in_flight_ = true;
  round_again_ = false;
  store_->LeaseRoundAsync(
      std::move(round),
      [this, askers = std::move(askers)](
          absl::StatusOr<std::vector<std::optional<JobRecord>>> leased) {
        OnLeased(askers, std::move(leased));
      });
}

void Dispatcher::OnLeased(
    const std::vector<Asker>& askers,
    absl::StatusOr<std::vector<std::optional<JobRecord>>> leased) {
  Touched touched;
  std::vector<JobRecord> orphans;
  {
    absl::MutexLock lock(&mu_);
    round_in_flight_ = false;
    if (!leased.ok()) {
      LogEvent("lease_error", {{"error", leased.status().ToString()}});
    }
    for (size_t i = 0; leased.ok() && i < leased->size(); ++i) {
      const std::optional<JobRecord>& job = (*leased)[i];
      if (!job) continue;
      // Cancelled meanwhile: the store already finished the job.
      if (revoked_in_round_.erase(job->lease_id) > 0) continue;
      Worker* w = Find(askers[i].name, askers[i].generation);
      if (w == nullptr || w->draining || w->lease || !leasing_) {
        orphans.push_back(*job);
        continue;
      }
      Assign(*w, *job);
    }
    revoked_in_round_.clear();
    if (round_again_) DispatchLocked(&touched);
  }
  for (const JobRecord& job : orphans) {
    store_->ReturnLeaseAsync(
        job.id, job.lease_id,
        absl::StrCat("worker ", job.worker,
                     " could no longer take the job when it was leased"),
        [this, id = job.id](absl::StatusOr<JobRecord> back) {
          OnReleased(id, std::move(back));
        });
  }
  Notify(touched);
}

void Dispatcher::Dispatch() {
  Touched touched;
  {
    absl::MutexLock lock(&mu_);
    DispatchLocked(&touched);
  }
  Notify(touched);
}

void Dispatcher::SetLeasing(bool enabled) {
  Touched touched;
  {
    absl::MutexLock lock(&mu_);
    leasing_ = enabled && !stopping_;
    DispatchLocked(&touched);
  }
  Notify(touched);
}

int Dispatcher::BusyWorkers() {
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (const auto& [name, w] : workers_) n += w.lease ? 1 : 0;
  return n;
}

Dispatcher::Lease* Dispatcher::CurrentLease(Worker& w,
                                            const std::string& lease_id) {
  if (w.lease && w.lease->lease_id == lease_id) return &*w.lease;
  w.connection->Send(
      CancelMessage(lease_id,
                    "the server no longer honours this lease (expired, "
                    "cancelled or re-leased)"));
  return nullptr;
}

void Dispatcher::Finished(Worker& w) {
  w.lease.reset();
  w.jobs_done += 1;
}

void Dispatcher::ReleaseLease(Worker& w, const google::rpc::Status& error,
                              bool permanent, Touched* touched) {
  (void)touched;  // The job's followers are woken once it is released.
  const Lease lease = *w.lease;
  w.lease.reset();
  store_->ReleaseAsync(lease.job, lease.lease_id, error, permanent,
                       [this, id = lease.job](absl::StatusOr<JobRecord> job) {
                         OnReleased(id, std::move(job));
                       });
}

void Dispatcher::OnReleased(const std::string& id,
                            absl::StatusOr<JobRecord> job) {
  Touched touched;
  {
    absl::MutexLock lock(&mu_);
    if (job.ok()) {
      CountState(*job);
      // A re-queued job moved the queue and may be leased again.
      if (job->state == v1::QUEUED) DispatchLocked(&touched);
    } else if (!absl::IsFailedPrecondition(job.status())) {
      // The job stays RUNNING in the store until its lease expires.
      LogEvent("release_error",
               {{"job_id", id}, {"error", job.status().ToString()}});
    }
  }
  Notify(touched);
}

void Dispatcher::OnLeaseError(Worker& w, const absl::Status& error,
                              Touched* touched) {
  if (absl::IsFailedPrecondition(error) || absl::IsNotFound(error)) {
    // Fenced: the job moved on without this lease.
    const std::string lease_id = w.lease ? w.lease->lease_id : "";
    w.lease.reset();
    w.connection->Send(CancelMessage(lease_id, std::string(error.message())));
    return;
  }
  const std::string lease_id = w.lease->lease_id;
  ReleaseLease(w,
               RpcStatus(error.code(), absl::StrCat("the server could not "
                                                    "record the job: ",
                                                    error.message())),
               false, touched);
  w.connection->Send(CancelMessage(lease_id, std::string(error.message())));
}

std::function<void(absl::Status)> Dispatcher::AfterStore(
    const Worker& w, const std::string& lease_id,
    std::function<void()>* read_next) {
  return
      [this, name = w.registration.name(), connection = w.connection, lease_id,
       next = std::exchange(*read_next, nullptr)](absl::Status stored) {
        if (!stored.ok()) OnStoreError(name, connection, lease_id, stored);
        if (next) next();
      };
}

void Dispatcher::OnStoreError(const std::string& name,
                              const WorkerConnection* connection,
                              const std::string& lease_id,
                              const absl::Status& error) {
  Touched touched;
  {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(name);
    if (it == workers_.end() || it->second.connection != connection) return;
    Worker& w = it->second;
    if (!w.lease || w.lease->lease_id != lease_id) return;  // Already gone.
    OnLeaseError(w, error, &touched);
    if (!w.lease) DispatchLocked(&touched);
  }
  Notify(touched);
}

void Dispatcher::OnMessage(const std::string& name,
                           const v1::WorkerMessage& message,
                           const WorkerConnection* connection,
                           std::function<void()> read_next) {
  Touched touched;
  {
    absl::ReleasableMutexLock lock(&mu_);
    auto it = workers_.find(name);
    if (it == workers_.end() ||
        (connection != nullptr && it->second.connection != connection)) {
      lock.Release();
      if (read_next) read_next();
      return;
    }
    Worker& w = it->second;
    const bool had_lease = w.lease.has_value();
    // Read before any asynchronous store change: once it is committed the
    // stream reads its next message into `message`.
    const auto kind = message.message_case();
    w.last_heartbeat = clock_->Now();
    switch (message.message_case()) {
      case v1::WorkerMessage::kHeartbeat: {
        w.gpu_memory_used = message.heartbeat().gpu_memory_used_bytes();
        const std::string& lease_id = message.heartbeat().lease_id();
        if (lease_id.empty()) break;
        if (Lease* lease = CurrentLease(w, lease_id)) {
          store_->RenewAsync(lease->job, lease_id,
                             AfterStore(w, lease_id, &read_next));
        }
        break;
      }
      case v1::WorkerMessage::kLeaseRequest:
        w.wants_lease = true;
        break;
      case v1::WorkerMessage::kJobEvent:
        OnJobEvent(w, message.job_event(), &touched, &read_next);
        break;
      case v1::WorkerMessage::kJobResult:
        OnJobResult(w, message.job_result(), &touched, &read_next);
        break;
      case v1::WorkerMessage::kCancelAck:
        if (w.lease && w.lease->lease_id == message.cancel_ack().lease_id()) {
          w.lease.reset();
        }
        break;
      case v1::WorkerMessage::kTrainingReport:
        OnTrainingReport(w, message.training_report(), &read_next);
        break;
      case v1::WorkerMessage::kTrainingResult:
        OnTrainingResult(w, message.training_result(), &touched, &read_next);
        break;
      case v1::WorkerMessage::kReloadResult:
        OnReloadResult(name, message.reload_result(), &touched);
        break;
      default:
        break;
    }
    // Only these can free a worker or a job; progress events cannot.
    if (kind == v1::WorkerMessage::kLeaseRequest ||
        kind == v1::WorkerMessage::kJobResult ||
        kind == v1::WorkerMessage::kTrainingResult ||
        kind == v1::WorkerMessage::kCancelAck ||
        (had_lease && !w.lease.has_value())) {
      DispatchLocked(&touched);
    }
  }
  Notify(touched);
  if (read_next) read_next();
}

void Dispatcher::OnJobEvent(Worker& w, const v1::JobEvent& event,
                            Touched* touched,
                            std::function<void()>* read_next) {
  Lease* lease = CurrentLease(w, event.lease_id());
  if (lease == nullptr) return;
  const absl::Time now = clock_->Now();
  v1::GenerateVideoEvent body = event.event();
  body.clear_job();
  body.clear_sequence();
  common::ToProto(now, body.mutable_time());
  if (body.has_chunk()) {
    std::string data = std::move(*body.mutable_chunk()->mutable_data());
    body.mutable_chunk()->clear_data();
    if (data.size() > (1u << 20)) {
      OnLeaseError(w,
                   absl::InvalidArgumentError(absl::StrCat(
                       "chunk of ", data.size(), " bytes exceeds 1 MiB")),
                   touched);
      return;
    }
    lease->progress.set_bytes(body.chunk().offset() + data.size());
    if (!lease->first_chunk) {
      lease->first_chunk = true;
      metrics_->time_to_first_chunk_seconds->Observe(
          {}, absl::ToDoubleSeconds(now - lease->start));
    }
    const int64_t offset = body.chunk().offset();
    store_->AppendChunkAsync(
        lease->job, lease->lease_id, offset, std::move(data),
        body.SerializeAsString(),
        [done = AfterStore(w, lease->lease_id, read_next)](
            absl::StatusOr<int64_t> seq) { done(seq.status()); });
    return;
  }
  if (body.has_step()) {
    v1::Step* step = body.mutable_step();
    // A count of finished steps (VideoJobProgress.step), not an index.
    lease->progress.set_step(step->index() + 1);
    lease->progress.set_total_steps(step->total());
    metrics_->denoise_step_seconds->Observe(
        {}, absl::ToDoubleSeconds(now - lease->last_step));
    lease->last_step = now;
  } else if (body.has_decoded()) {
    lease->progress.set_frames_done(body.decoded().frames_done());
    lease->progress.set_frames_total(body.decoded().frames_total());
  } else if (body.has_text_encoded()) {
    lease->last_step = now;
  } else {
    return;  // Workers report only progress kinds here.
  }
  store_->AppendEventAsync(
      lease->job, lease->lease_id, body.SerializeAsString(),
      lease->progress.SerializeAsString(), std::nullopt,
      [done = AfterStore(w, lease->lease_id, read_next)](
          absl::StatusOr<int64_t> seq) { done(seq.status()); });
}

void Dispatcher::OnJobResult(Worker& w, const v1::JobResult& result,
                             Touched* touched,
                             std::function<void()>* read_next) {
  Lease* lease = CurrentLease(w, result.lease_id());
  if (lease == nullptr) return;
  if (!result.has_completed()) {
    google::rpc::Status error = result.error();
    if (error.code() == 0)
      error.set_code(static_cast<int>(absl::StatusCode::kUnknown));
    ReleaseLease(w, error, result.permanent(), touched);
    return;
  }
  v1::Completed completed = result.completed();
  completed.set_video_uri(JobName(JobKind::kVideo, lease->job) + "/video.mp4");
  completed.set_size_bytes(lease->progress.bytes());
  common::ToProto(lease->leased - lease->queued,
                  completed.mutable_timings()->mutable_queue());
  v1::GenerateVideoEvent body;
  common::ToProto(clock_->Now(), body.mutable_time());
  *body.mutable_completed() = completed;
  CompleteLease(w, completed.SerializeAsString(), body.SerializeAsString(),
                read_next);
}

void Dispatcher::CompleteLease(Worker& w, std::string result, std::string body,
                               std::function<void()>* read_next) {
  store_->CompleteAsync(
      w.lease->job, w.lease->lease_id, std::move(result), std::move(body),
      [this, worker = Asker{w.registration.name(), w.generation},
       lease = *w.lease, next = std::exchange(*read_next, nullptr)](
          absl::StatusOr<JobRecord> done) {
        OnCompleted(worker, lease, std::move(done));
        if (next) next();
      });
}

void Dispatcher::OnCompleted(const Asker& worker, const Lease& lease,
                             absl::StatusOr<JobRecord> done) {
  Touched touched;
  {
    absl::MutexLock lock(&mu_);
    Worker* w = Find(worker.name, worker.generation);
    const bool current =
        w != nullptr && w->lease && w->lease->lease_id == lease.lease_id;
    if (done.ok()) {
      if (current) Finished(*w);
      if (lease.kind == JobKind::kVideo) {
        metrics_->job_duration_seconds->Observe(
            {}, absl::ToDoubleSeconds(clock_->Now() - lease.start));
      }
      CountState(*done);
    } else if (current) {
      OnLeaseError(*w, done.status(), &touched);
    }
    DispatchLocked(&touched);
  }
  Notify(touched);
}

void Dispatcher::OnCancelled(const CancelResult& cancelled) {
  {
    absl::MutexLock lock(&mu_);
    CountState(cancelled.job);
    auto it = workers_.find(cancelled.worker);
    if (!cancelled.revoked_lease.empty()) {
      const bool held = it != workers_.end() && it->second.lease &&
                        it->second.lease->lease_id == cancelled.revoked_lease;
      if (!held && round_in_flight_) {
        // Granted by the round in flight: never sent.
        revoked_in_round_.insert(cancelled.revoked_lease);
      } else if (it != workers_.end()) {
        it->second.connection->Send(
            CancelMessage(cancelled.revoked_lease, "the job was cancelled"));
      }
    }
  }
}

void Dispatcher::Tick() {
  Touched touched;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    if (!expiring_) {
      expiring_ = true;
      store_->ExpireLeasesAsync(
          [this](absl::StatusOr<std::vector<JobRecord>> expired) {
            OnExpired(std::move(expired));
          });
    }
    if (!collecting_) {
      collecting_ = true;
      store_->CollectGarbageAsync(
          [this](absl::StatusOr<std::vector<std::string>> deleted) {
            OnCollected(std::move(deleted));
          });
    }
    FinishReloads(false, &touched);
    DispatchLocked(&touched);
  }
  Notify(touched);
}

void Dispatcher::OnExpired(absl::StatusOr<std::vector<JobRecord>> expired) {
  Touched touched;
  {
    absl::MutexLock lock(&mu_);
    expiring_ = false;
    if (!expired.ok()) {
      LogEvent("expire_error", {{"error", expired.status().ToString()}});
      return;
    }
    for (const JobRecord& job : *expired) {
      CountState(job);
      // Completions run in submission order: a worker that holds this job
      // holds the lease that expired (a later lease comes after this).
      for (auto& [name, w] : workers_) {
        if (w.lease && w.lease->job == job.id) {
          w.connection->Send(
              CancelMessage(w.lease->lease_id, "the lease expired"));
          w.lease.reset();
        }
      }
    }
    if (!expired->empty()) DispatchLocked(&touched);
  }
  Notify(touched);
}

void Dispatcher::OnCollected(absl::StatusOr<std::vector<std::string>> deleted) {
  {
    absl::MutexLock lock(&mu_);
    collecting_ = false;
  }
  if (!deleted.ok()) {
    LogEvent("gc_error", {{"error", deleted.status().ToString()}});
    return;
  }
  for (const std::string& id : *deleted) {
    LogEvent("job_deleted", {{"job_id", JobName(JobKind::kVideo, id)},
                             {"reason", "result expired or over quota"}});
    hub_->Notify(id);
  }
}

v1::Worker Dispatcher::Describe(const Worker& w) const {
  v1::Worker out;
  out.set_name(w.registration.name());
  out.set_kind(w.registration.kind());
  out.set_state(w.draining ? v1::WORKER_STATE_DRAINING
                : w.lease  ? v1::WORKER_STATE_BUSY
                           : v1::WORKER_STATE_IDLE);
  *out.mutable_capabilities() = w.registration.capabilities();
  if (w.lease) out.set_current_job(JobName(w.lease->kind, w.lease->job));
  common::ToProto(w.connect_time, out.mutable_connect_time());
  common::ToProto(w.last_heartbeat, out.mutable_last_heartbeat_time());
  out.set_gpu_memory_used_bytes(w.gpu_memory_used);
  out.set_jobs_done(w.jobs_done);
  return out;
}

std::vector<v1::Worker> Dispatcher::ListWorkers() {
  absl::MutexLock lock(&mu_);
  std::vector<v1::Worker> out;
  for (const auto& [name, w] : workers_) out.push_back(Describe(w));
  return out;
}

absl::StatusOr<v1::Worker> Dispatcher::DrainWorker(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(name);
  if (it == workers_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no worker named ", name, " is connected"));
  }
  it->second.draining = true;
  v1::ServerMessage m;
  m.mutable_drain();
  it->second.connection->Send(m);
  LogEvent("worker_draining", {{"worker_id", name}});
  return Describe(it->second);
}

}  // namespace lvs::server
