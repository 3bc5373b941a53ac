// Dispatcher: training reports and results from trainers, and model reloads.
// The rest of the dispatcher is in dispatcher.cc.
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "server/dispatcher.h"
#include "server/job_log.h"

namespace lvs::server {

void Dispatcher::OnTrainingReport(Worker& w, const v1::TrainingReport& report,
                                  std::function<void()>* read_next) {
  Lease* lease = CurrentLease(w, report.lease_id());
  if (lease == nullptr) return;
  v1::TrainingEvent body = report.event();
  body.clear_job();
  body.clear_sequence();
  common::ToProto(clock_->Now(), body.mutable_time());
  std::optional<std::string> progress, checkpoint;
  if (body.has_step()) {
    progress = body.step().SerializeAsString();
  } else if (body.has_checkpoint()) {
    checkpoint = body.checkpoint().SerializeAsString();
  } else {
    return;  // Trainers report only steps and checkpoints here.
  }
  store_->AppendEventAsync(
      lease->job, lease->lease_id, body.SerializeAsString(),
      std::move(progress), std::move(checkpoint),
      [done = AfterStore(w, lease->lease_id, read_next)](
          absl::StatusOr<int64_t> seq) { done(seq.status()); });
}

void Dispatcher::OnTrainingResult(Worker& w, const v1::TrainingResult& result,
                                  Touched* touched,
                                  std::function<void()>* read_next) {
  Lease* lease = CurrentLease(w, result.lease_id());
  if (lease == nullptr) return;
  if (!result.has_completed()) {
    google::rpc::Status error = result.error();
    if (error.code() == 0) {
      error.set_code(static_cast<int>(absl::StatusCode::kUnknown));
    }
    ReleaseLease(w, error, result.permanent(), touched);
    return;
  }
  v1::TrainingEvent body;
  common::ToProto(clock_->Now(), body.mutable_time());
  *body.mutable_completed() = result.completed();
  CompleteLease(w, result.completed().SerializeAsString(),
                body.SerializeAsString(), read_next);
}

absl::Status Dispatcher::Reload(const std::vector<std::string>& workers,
                                const std::string& checkpoint, bool use_ema,
                                const std::string& vae, ReloadDone done) {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> targets = workers;
  if (targets.empty()) {
    for (const auto& [name, w] : workers_) {
      if (w.registration.kind() == v1::WORKER_KIND_GENERATOR) {
        targets.push_back(name);
      }
    }
  }
  for (const std::string& name : targets) {
    auto it = workers_.find(name);
    if (it == workers_.end() ||
        it->second.registration.kind() != v1::WORKER_KIND_GENERATOR) {
      return absl::NotFoundError(
          absl::StrCat("no generator worker named ", name, " is connected"));
    }
  }
  if (targets.empty()) {
    return absl::FailedPreconditionError("no generator worker is connected");
  }
  const std::string reload_id = absl::StrCat("reload-", next_reload_++);
  PendingReload& pending = reloads_[reload_id];
  pending.deadline = clock_->Now() + options_.reload_timeout;
  pending.done = std::move(done);
  v1::ServerMessage m;
  m.mutable_reload()->set_reload_id(reload_id);
  m.mutable_reload()->set_checkpoint(checkpoint);
  m.mutable_reload()->set_use_ema(use_ema);
  m.mutable_reload()->set_vae(vae);
  for (const std::string& name : targets) {
    v1::WorkerReload& r = pending.results[name];
    r.set_worker(name);
    r.mutable_status()->set_code(
        static_cast<int>(absl::StatusCode::kDeadlineExceeded));
    r.mutable_status()->set_message("the worker did not answer");
    pending.waiting += 1;
    workers_[name].connection->Send(m);
  }
  LogEvent("model_reload", {{"reload", reload_id},
                            {"checkpoint", checkpoint},
                            {"vae", vae},
                            {"workers", targets.size()}});
  return absl::OkStatus();
}

void Dispatcher::OnReloadResult(const std::string& name,
                                const v1::ReloadResult& result,
                                Touched* touched) {
  auto it = reloads_.find(result.reload_id());
  if (it == reloads_.end()) return;
  auto r = it->second.results.find(name);
  if (r == it->second.results.end()) return;
  r->second.set_model_version(result.model_version());
  *r->second.mutable_status() = result.status();
  it->second.waiting -= 1;
  if (result.status().code() == 0) {
    workers_[name].registration.mutable_capabilities()->set_model_version(
        result.model_version());
  }
  LogEvent("model_reloaded", {{"reload", result.reload_id()},
                              {"worker_id", name},
                              {"model_version", result.model_version()},
                              {"error", result.status().message()}});
  FinishReloads(false, touched);
}

void Dispatcher::FinishReloads(bool all, Touched* touched) {
  const absl::Time now = clock_->Now();
  for (auto it = reloads_.begin(); it != reloads_.end();) {
    PendingReload& p = it->second;
    // A worker that left will never answer.
    for (auto& [name, r] : p.results) {
      if (workers_.count(name) == 0 && r.model_version().empty() &&
          r.status().code() ==
              static_cast<int>(absl::StatusCode::kDeadlineExceeded)) {
        r.mutable_status()->set_code(
            static_cast<int>(absl::StatusCode::kUnavailable));
        r.mutable_status()->set_message("the worker disconnected");
        p.waiting -= 1;
      }
    }
    if (all || p.waiting <= 0 || now >= p.deadline) {
      v1::ReloadModelResponse response;
      for (auto& [name, r] : p.results) *response.add_results() = r;
      touched->reloads_done.push_back(
          [done = std::move(p.done), response = std::move(response)] {
            done(response);
          });
      it = reloads_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace lvs::server
