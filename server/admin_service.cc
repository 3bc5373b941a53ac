#include "server/admin_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "server/call_context.h"
#include "server/job_convert.h"
#include "server/job_event_stream.h"
#include "server/job_log.h"
#include "server/rich_status.h"
#include "server/validation.h"

namespace lvs::server {
namespace {

// The owner of every training job (they are admin resources).
constexpr char kAdminOwner[] = "admin";

}  // namespace

AdminServiceImpl::AdminServiceImpl(ServiceContext* shared, int64_t max_queue)
    : shared_(shared), max_queue_(max_queue) {}

grpc::Status AdminServiceImpl::Gate(grpc::CallbackServerContext* ctx) const {
  return GateAdmin(*shared_, ctx);
}

grpc::Status AdminServiceImpl::LoadTraining(const std::string& name,
                                            JobRecord* job) {
  return LoadNamedJob(*shared_, JobKind::kTraining, name, /*owner=*/nullptr,
                      job);
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListWorkers(
    grpc::CallbackServerContext* ctx, const v1::ListWorkersRequest* request,
    v1::ListWorkersResponse* response) {
  grpc::Status status = Gate(ctx);
  if (status.ok()) {
    for (v1::Worker& w : shared_->dispatcher->ListWorkers()) {
      *response->add_workers() = std::move(w);
    }
  }
  return Done(ctx, status);
}

grpc::ServerUnaryReactor* AdminServiceImpl::DrainWorker(
    grpc::CallbackServerContext* ctx, const v1::DrainWorkerRequest* request,
    v1::Worker* response) {
  grpc::Status status = Gate(ctx);
  if (status.ok()) {
    absl::StatusOr<v1::Worker> worker =
        shared_->dispatcher->DrainWorker(request->name());
    status = ToGrpc(worker.status());
    if (worker.ok()) *response = *std::move(worker);
  }
  return Done(ctx, status);
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetQueueStats(
    grpc::CallbackServerContext* ctx, const v1::GetQueueStatsRequest* request,
    v1::QueueStats* response) {
  grpc::Status status = Gate(ctx);
  if (!status.ok()) return Done(ctx, status);
  absl::StatusOr<std::map<int, int64_t>> depth =
      shared_->store->QueuedByPriority(JobKind::kVideo);
  absl::StatusOr<int64_t> running =
      shared_->store->CountState(JobKind::kVideo, v1::RUNNING);
  absl::StatusOr<int64_t> training_queued =
      shared_->store->CountState(JobKind::kTraining, v1::QUEUED);
  absl::StatusOr<int64_t> training_running =
      shared_->store->CountState(JobKind::kTraining, v1::RUNNING);
  absl::StatusOr<std::optional<absl::Time>> oldest =
      shared_->store->OldestQueued(JobKind::kVideo);
  for (const absl::Status& s :
       {depth.status(), running.status(), training_queued.status(),
        training_running.status(), oldest.status()}) {
    if (!s.ok()) return Done(ctx, ToGrpc(s));
  }
  int64_t queued = 0;
  for (int p : {v1::PRIORITY_HIGH, v1::PRIORITY_NORMAL, v1::PRIORITY_LOW}) {
    auto it = depth->find(p);
    const int64_t n = it == depth->end() ? 0 : it->second;
    v1::PriorityDepth* d = response->add_depth();
    d->set_priority(static_cast<v1::Priority>(p));
    d->set_queued(n);
    queued += n;
  }
  response->set_queued(queued);
  response->set_running(*running);
  response->set_max_queue(max_queue_);
  for (const v1::Worker& w : shared_->dispatcher->ListWorkers()) {
    switch (w.state()) {
      case v1::WORKER_STATE_IDLE:
        response->set_workers_idle(response->workers_idle() + 1);
        break;
      case v1::WORKER_STATE_BUSY:
        response->set_workers_busy(response->workers_busy() + 1);
        break;
      default:
        response->set_workers_draining(response->workers_draining() + 1);
    }
  }
  if (oldest->has_value()) {
    common::ToProto(**oldest, response->mutable_oldest_queued_time());
  }
  response->set_training_queued(*training_queued);
  response->set_training_running(*training_running);
  return Done(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* AdminServiceImpl::CreateTrainingJob(
    grpc::CallbackServerContext* ctx,
    const v1::CreateTrainingJobRequest* request, v1::TrainingJob* response) {
  grpc::Status status = Gate(ctx);
  if (!status.ok()) return Done(ctx, status);
  if (shared_->draining) {
    return Done(ctx, RichError(grpc::StatusCode::UNAVAILABLE,
                               "the server is draining", "DRAINING")
                         .RetryAfter(absl::Seconds(5))
                         .Build());
  }
  // task_ratio 0 (absent) means 1, as in lvs-trainer --spec.
  v1::TrainingJobSpec spec = request->spec();
  for (v1::TrainingTask& t : *spec.mutable_tasks()) {
    if (t.task_ratio() == 0) t.set_task_ratio(1);
  }
  google::rpc::BadRequest bad = ValidateTrainingSpec(spec, "spec.");
  ValidateRequestId(request->request_id(), "request_id", &bad);
  if (bad.field_violations_size() > 0) return Done(ctx, InvalidRequest(bad));
  NewJob job;
  job.kind = JobKind::kTraining;
  job.owner = kAdminOwner;
  job.request_id = request->request_id();
  job.training_spec = spec;
  // Answered from the store's completion once the job is on disk.
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::Status queued = shared_->store->AdmitAsync(
      std::move(job), AdmitLimits{},
      [this, reactor, response](absl::StatusOr<AdmitResult> admitted) {
        if (!admitted.ok()) {
          reactor->Finish(ToGrpc(admitted.status()));
          return;
        }
        if (admitted->outcome == AdmitOutcome::kCreated) {
          shared_->metrics->training_jobs_total->Add({"QUEUED"}, 1);
          LogJobState(admitted->job);
          shared_->dispatcher->Dispatch();
        }
        *response = ToTrainingJob(admitted->job);
        reactor->Finish(grpc::Status::OK);
      });
  if (!queued.ok()) reactor->Finish(ToGrpc(queued));
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetTrainingJob(
    grpc::CallbackServerContext* ctx, const v1::GetTrainingJobRequest* request,
    v1::TrainingJob* response) {
  JobRecord job;
  grpc::Status status = Gate(ctx);
  if (status.ok()) status = LoadTraining(request->name(), &job);
  if (status.ok()) *response = ToTrainingJob(job);
  return Done(ctx, status);
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListTrainingJobs(
    grpc::CallbackServerContext* ctx,
    const v1::ListTrainingJobsRequest* request,
    v1::ListTrainingJobsResponse* response) {
  grpc::Status status = Gate(ctx);
  if (!status.ok()) return Done(ctx, status);
  google::rpc::BadRequest bad;
  ValidatePageSize(request->page_size(), "page_size", &bad);
  if (!v1::JobState_IsValid(request->state())) {
    auto* v = bad.add_field_violations();
    v->set_field("state");
    v->set_description("unknown job state");
  }
  ListQuery query;
  query.kind = JobKind::kTraining;
  query.state = request->state();
  return Done(ctx, ServeJobPage(*shared_, *request, query, std::move(bad),
                                response, ToTrainingJob));
}

grpc::ServerWriteReactor<v1::TrainingEvent>* AdminServiceImpl::WatchTrainingJob(
    grpc::CallbackServerContext* ctx,
    const v1::WatchTrainingJobRequest* request) {
  JobRecord job;
  grpc::Status status = Gate(ctx);
  if (status.ok()) status = LoadTraining(request->name(), &job);
  if (!status.ok()) return new RejectedStream<v1::TrainingEvent>(status);
  return new JobEventStream<v1::TrainingEvent>(
      shared_->store, shared_->hub, JobKind::kTraining, job.id, 0, nullptr);
}

grpc::ServerUnaryReactor* AdminServiceImpl::CancelTrainingJob(
    grpc::CallbackServerContext* ctx,
    const v1::CancelTrainingJobRequest* request, v1::TrainingJob* response) {
  JobRecord job;
  grpc::Status status = Gate(ctx);
  if (status.ok()) status = LoadTraining(request->name(), &job);
  if (!status.ok()) return Done(ctx, status);
  // Answered once the cancellation is on disk.
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  shared_->store->CancelAsync(
      JobKind::kTraining, job.id, "", "cancelled by an administrator",
      [this, reactor, response](absl::StatusOr<CancelResult> cancelled) {
        if (cancelled.ok()) {
          shared_->dispatcher->OnCancelled(*cancelled);
          *response = ToTrainingJob(cancelled->job);
        }
        reactor->Finish(ToGrpc(cancelled.status()));
      });
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::ReloadModel(
    grpc::CallbackServerContext* ctx, const v1::ReloadModelRequest* request,
    v1::ReloadModelResponse* response) {
  grpc::Status status = Gate(ctx);
  if (!status.ok()) return Done(ctx, status);
  std::string checkpoint = request->checkpoint();
  if (checkpoint.empty() == request->training_job().empty()) {
    return Done(ctx, RichError(grpc::StatusCode::INVALID_ARGUMENT,
                               "set exactly one of checkpoint and training_job",
                               "INVALID_REQUEST")
                         .FieldViolation("checkpoint",
                                         "set exactly one of checkpoint and "
                                         "training_job")
                         .Build());
  }
  if (checkpoint.empty()) {
    JobRecord job;
    status = LoadTraining(request->training_job(), &job);
    if (!status.ok()) return Done(ctx, status);
    const v1::TrainingCompleted completed =
        job.training_completed.value_or(v1::TrainingCompleted());
    if (job.state != v1::SUCCEEDED || completed.checkpoint().path().empty()) {
      return Done(ctx,
                  RichError(grpc::StatusCode::FAILED_PRECONDITION,
                            absl::StrCat(request->training_job(),
                                         " has no final checkpoint (",
                                         v1::JobState_Name(job.state), ")"),
                            "TRAINING_NOT_SUCCEEDED")
                      .Precondition("STATE", request->training_job(),
                                    "must be SUCCEEDED")
                      .Build());
    }
    checkpoint = completed.checkpoint().path();
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  std::vector<std::string> workers(request->workers().begin(),
                                   request->workers().end());
  absl::Status started = shared_->dispatcher->Reload(
      workers, checkpoint, request->use_ema(), request->vae(),
      [reactor, response](const v1::ReloadModelResponse& result) {
        *response = result;
        reactor->Finish(grpc::Status::OK);
      });
  if (!started.ok()) reactor->Finish(ToGrpc(started));
  return reactor;
}

}  // namespace lvs::server
