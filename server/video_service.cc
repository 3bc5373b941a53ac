#include "server/video_service.h"

#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "server/call_context.h"
#include "server/job_convert.h"
#include "server/job_event_stream.h"
#include "server/job_log.h"
#include "server/rich_status.h"

namespace lvs::server {
VideoServiceImpl::VideoServiceImpl(ServiceContext* shared,
                                   VideoServiceOptions options)
    : shared_(shared), options_(std::move(options)) {}

grpc::Status VideoServiceImpl::Gate(grpc::CallbackServerContext* ctx,
                                    ClientIdentity* identity) const {
  return GateClient(*shared_, ctx, identity);
}

grpc::Status VideoServiceImpl::Admit(const ClientIdentity& identity,
                                     const v1::GenerateVideoRequest& request,
                                     const std::string& request_id,
                                     const std::string& prefix,
                                     JobRecord* job) {
  if (shared_->draining) {
    shared_->metrics->admission_rejections_total->Add({"draining"}, 1);
    return RichError(grpc::StatusCode::UNAVAILABLE,
                     "the server is draining and admits no new jobs",
                     "DRAINING")
        .RetryAfter(options_.retry_delay)
        .Build();
  }
  google::rpc::BadRequest bad =
      ValidateGenerateRequest(request, options_.caps, prefix);
  ValidateRequestId(request_id, "request_id", &bad);
  if (bad.field_violations_size() > 0) {
    shared_->metrics->admission_rejections_total->Add({"invalid"}, 1);
    return InvalidRequest(bad);
  }
  NewJob new_job;
  new_job.owner = identity.owner;
  new_job.request_id = request_id;
  new_job.priority = request.priority() == v1::PRIORITY_UNSPECIFIED
                         ? v1::PRIORITY_NORMAL
                         : request.priority();
  // The seed is fixed at admission, so a retried attempt (another worker
  // after a lease expiry) reproduces the same video.
  v1::GenerateVideoRequest stored = request;
  if (stored.seed() == 0) {
    thread_local absl::BitGen
        seed_gen;  // Per RPC thread: BitGen is unsynchronised.
    stored.set_seed(absl::Uniform<int64_t>(absl::IntervalClosed, seed_gen, 1,
                                           int64_t{1} << 53));
  }
  new_job.spec = stored.SerializeAsString();
  AdmitLimits limits;
  limits.max_queue = options_.max_queue;
  limits.owner_max_active = identity.max_concurrent > 0
                                ? identity.max_concurrent
                                : options_.max_per_client;
  limits.owner_max_queued = identity.max_queued;
  absl::StatusOr<AdmitResult> admitted = shared_->store->Admit(new_job, limits);
  if (!admitted.ok()) return ToGrpc(admitted.status());
  switch (admitted->outcome) {
    case AdmitOutcome::kCreated:
      *job = admitted->job;
      shared_->metrics->jobs_total->Add({"QUEUED"}, 1);
      LogJobState(*job);
      shared_->dispatcher->Dispatch();
      return grpc::Status::OK;
    case AdmitOutcome::kExisting:
      *job = admitted->job;
      return grpc::Status::OK;
    case AdmitOutcome::kQueueFull:
      shared_->metrics->admission_rejections_total->Add({"queue_full"}, 1);
      return RichError(grpc::StatusCode::RESOURCE_EXHAUSTED,
                       absl::StrCat("the queue is full (", admitted->limit,
                                    " jobs); retry later"),
                       "QUEUE_FULL")
          .Quota("queue",
                 absl::StrCat("at most ", admitted->limit, " queued jobs"))
          .RetryAfter(options_.retry_delay)
          .Build();
    case AdmitOutcome::kOwnerActiveFull:
    case AdmitOutcome::kOwnerQueuedFull: {
      const bool active = admitted->outcome == AdmitOutcome::kOwnerActiveFull;
      shared_->metrics->admission_rejections_total->Add({"client_quota"}, 1);
      const std::string what = absl::StrCat(
          "at most ", admitted->limit,
          active ? " queued or running" : " queued", " jobs per API key");
      return RichError(grpc::StatusCode::RESOURCE_EXHAUSTED,
                       absl::StrCat("client quota exceeded: ", what),
                       "CLIENT_QUOTA_EXCEEDED")
          .Quota(absl::StrCat("api_key:", identity.owner), what)
          .RetryAfter(options_.retry_delay)
          .Build();
    }
  }
  return grpc::Status(grpc::StatusCode::INTERNAL, "unknown admission outcome");
}

grpc::Status VideoServiceImpl::Load(const ClientIdentity& identity,
                                    const std::string& name, JobRecord* job) {
  return LoadNamedJob(*shared_, JobKind::kVideo, name, &identity.owner, job);
}

v1::VideoJob VideoServiceImpl::Describe(const JobRecord& job) {
  absl::StatusOr<int64_t> position = shared_->store->QueuePosition(job);
  return ToVideoJob(job, position.ok() ? *position : 0);
}

absl::StatusOr<JobRecord> VideoServiceImpl::CancelJob(
    const std::string& id, const std::string& owner,
    const std::string& reason) {
  absl::StatusOr<CancelResult> cancelled =
      shared_->store->Cancel(JobKind::kVideo, id, owner, reason);
  if (!cancelled.ok()) return cancelled.status();
  shared_->dispatcher->OnCancelled(*cancelled);
  return cancelled->job;
}

grpc::ServerWriteReactor<v1::GenerateVideoEvent>*
VideoServiceImpl::GenerateVideo(grpc::CallbackServerContext* ctx,
                                const v1::GenerateVideoRequest* request) {
  ClientIdentity identity;
  JobRecord job;
  grpc::Status status = Gate(ctx, &identity);
  if (status.ok()) status = Admit(identity, *request, "", "", &job);
  if (!status.ok()) {
    return new RejectedStream<v1::GenerateVideoEvent>(status);
  }
  const std::string id = job.id;
  const std::string owner = identity.owner;
  return new JobEventStream<v1::GenerateVideoEvent>(
      shared_->store, shared_->hub, JobKind::kVideo, id, 0, [this, id, owner] {
        if (shared_->stopping) return;
        absl::StatusOr<JobRecord> cancelled =
            CancelJob(id, owner, "the GenerateVideo call ended");
        (void)cancelled;  // Already finished jobs stay as they are.
      });
}

grpc::ServerUnaryReactor* VideoServiceImpl::CreateVideoJob(
    grpc::CallbackServerContext* ctx, const v1::CreateVideoJobRequest* request,
    v1::VideoJob* response) {
  ClientIdentity identity;
  JobRecord job;
  grpc::Status status = Gate(ctx, &identity);
  if (status.ok()) {
    status = Admit(identity, request->video(), request->request_id(), "video.",
                   &job);
  }
  if (status.ok()) *response = Describe(job);
  return Done(ctx, status);
}

grpc::ServerUnaryReactor* VideoServiceImpl::GetVideoJob(
    grpc::CallbackServerContext* ctx, const v1::GetVideoJobRequest* request,
    v1::VideoJob* response) {
  ClientIdentity identity;
  JobRecord job;
  grpc::Status status = Gate(ctx, &identity);
  if (status.ok()) status = Load(identity, request->name(), &job);
  if (status.ok()) *response = Describe(job);
  return Done(ctx, status);
}

grpc::ServerUnaryReactor* VideoServiceImpl::ListVideoJobs(
    grpc::CallbackServerContext* ctx, const v1::ListVideoJobsRequest* request,
    v1::ListVideoJobsResponse* response) {
  ClientIdentity identity;
  grpc::Status status = Gate(ctx, &identity);
  if (!status.ok()) return Done(ctx, status);
  google::rpc::BadRequest bad;
  ValidatePageSize(request->page_size(), "page_size", &bad);
  if (!v1::JobState_IsValid(request->state())) {
    auto* v = bad.add_field_violations();
    v->set_field("state");
    v->set_description("unknown job state");
  }
  ListQuery query;
  query.kind = JobKind::kVideo;
  query.owner = identity.owner;
  query.state = request->state();
  return Done(ctx, ServeJobPage(
                       *shared_, *request, query, std::move(bad), response,
                       [this](const JobRecord& job) { return Describe(job); }));
}

grpc::ServerUnaryReactor* VideoServiceImpl::CancelVideoJob(
    grpc::CallbackServerContext* ctx, const v1::CancelVideoJobRequest* request,
    v1::VideoJob* response) {
  ClientIdentity identity;
  JobRecord job;
  grpc::Status status = Gate(ctx, &identity);
  if (status.ok()) status = Load(identity, request->name(), &job);
  if (status.ok()) {
    absl::StatusOr<JobRecord> cancelled =
        CancelJob(job.id, identity.owner, "cancelled by the client");
    status = cancelled.ok() ? grpc::Status::OK : ToGrpc(cancelled.status());
    if (cancelled.ok()) *response = Describe(*cancelled);
  }
  return Done(ctx, status);
}

grpc::ServerWriteReactor<v1::GenerateVideoEvent>*
VideoServiceImpl::WatchVideoJob(grpc::CallbackServerContext* ctx,
                                const v1::WatchVideoJobRequest* request) {
  ClientIdentity identity;
  JobRecord job;
  grpc::Status status = Gate(ctx, &identity);
  if (status.ok() && request->from_offset() < 0) {
    status = RichError(grpc::StatusCode::INVALID_ARGUMENT,
                       "from_offset must not be negative", "INVALID_REQUEST")
                 .FieldViolation("from_offset", "must not be negative")
                 .Build();
  }
  if (status.ok()) status = Load(identity, request->name(), &job);
  if (!status.ok()) return new RejectedStream<v1::GenerateVideoEvent>(status);
  return new JobEventStream<v1::GenerateVideoEvent>(
      shared_->store, shared_->hub, JobKind::kVideo, job.id,
      request->from_offset(), nullptr);
}

grpc::ServerUnaryReactor* VideoServiceImpl::DeleteVideoJob(
    grpc::CallbackServerContext* ctx, const v1::DeleteVideoJobRequest* request,
    google::protobuf::Empty* response) {
  ClientIdentity identity;
  JobRecord job;
  grpc::Status status = Gate(ctx, &identity);
  if (status.ok()) status = Load(identity, request->name(), &job);
  if (status.ok()) {
    status =
        ToGrpc(shared_->store->Delete(JobKind::kVideo, job.id, identity.owner));
  }
  if (status.ok()) {
    LogEvent("job_deleted",
             {{"job", request->name()}, {"reason", "deleted by the client"}});
    shared_->hub->Notify(job.id);
  }
  return Done(ctx, status);
}

}  // namespace lvs::server
