#include "server/video_service.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "server/call_context.h"
#include "server/job_convert.h"
#include "server/job_event_stream.h"
#include "server/job_log.h"
#include "server/request_parse.h"
#include "server/rich_status.h"

namespace lvs::server {
VideoServiceImpl::VideoServiceImpl(ServiceContext* shared,
                                   VideoServiceOptions options)
    : shared_(shared), options_(std::move(options)) {}

grpc::Status VideoServiceImpl::Gate(grpc::CallbackServerContext* ctx,
                                    ClientIdentity* identity) const {
  return GateClient(*shared_, ctx, identity);
}

void VideoServiceImpl::AdmitAsync(
    const ClientIdentity& identity, const v1::GenerateVideoRequest& request,
    const std::string& request_id, const std::string& prefix,
    std::function<void(grpc::Status, JobRecord)> done) {
  auto new_job = std::make_shared<NewJob>();
  AdmitLimits limits;
  grpc::Status status =
      Prepare(identity, request, request_id, prefix, new_job.get(), &limits);
  if (!status.ok()) {
    done(status, JobRecord());
    return;
  }
  absl::Status queued = shared_->store->AdmitAsync(
      *new_job, limits,
      [this, identity, request, request_id, new_job,
       done](absl::StatusOr<AdmitResult> admitted) {
        JobRecord job;
        grpc::Status answer =
            Answer(identity, request, request_id, *new_job, admitted, &job);
        done(answer, std::move(job));
      });
  if (queued.ok()) return;
  // The writer is behind: refuse instead of queueing without bound.
  shared_->metrics->admission_rejections_total->Add({"overloaded"}, 1);
  done(RichError(grpc::StatusCode::RESOURCE_EXHAUSTED,
                 std::string(queued.message()), "STORE_OVERLOADED")
           .RetryAfter(options_.retry_delay)
           .Build(),
       JobRecord());
}

grpc::Status VideoServiceImpl::Prepare(const ClientIdentity& identity,
                                       const v1::GenerateVideoRequest& request,
                                       const std::string& request_id,
                                       const std::string& prefix, NewJob* job,
                                       AdmitLimits* limits) {
  if (shared_->draining) {
    shared_->metrics->admission_rejections_total->Add({"draining"}, 1);
    return RichError(grpc::StatusCode::UNAVAILABLE,
                     "the server is draining and admits no new jobs",
                     "DRAINING")
        .RetryAfter(options_.retry_delay)
        .Build();
  }
  // What the connected workers (or the catalogue) can run decides; absent
  // fields take the accepting model's defaults.
  std::vector<v1::ModelLimits> models;
  for (const v1::Model& m : Models()) models.push_back(m.limits());
  v1::GenerateVideoRequest resolved;
  google::rpc::BadRequest bad =
      AdmitToModels(request, models, prefix, &resolved);
  // The server's own caps and the model-independent rules (prompt, seed,
  // labels...), each field reported once.
  std::set<std::string> reported;
  for (const auto& v : bad.field_violations()) reported.insert(v.field());
  const google::rpc::BadRequest general =
      ValidateGenerateRequest(resolved, options_.caps, prefix);
  for (const auto& v : general.field_violations()) {
    if (reported.count(v.field()) == 0) *bad.add_field_violations() = v;
  }
  ValidateRequestId(request_id, "request_id", &bad);
  if (bad.field_violations_size() > 0) {
    shared_->metrics->admission_rejections_total->Add({"invalid"}, 1);
    return InvalidRequest(bad);
  }
  NewJob& new_job = *job;
  new_job.owner = identity.owner;
  new_job.request_id = request_id;
  new_job.priority = request.priority() == v1::PRIORITY_UNSPECIFIED
                         ? v1::PRIORITY_NORMAL
                         : request.priority();
  // The seed is fixed at admission, so a retried attempt (another worker
  // after a lease expiry) reproduces the same video.
  v1::GenerateVideoRequest stored = resolved;
  if (stored.seed() == 0) {
    thread_local absl::BitGen
        seed_gen;  // Per RPC thread: BitGen is unsynchronised.
    stored.set_seed(absl::Uniform<int64_t>(absl::IntervalClosed, seed_gen, 1,
                                           int64_t{1} << 53));
  }
  new_job.request = std::move(stored);
  limits->max_queue = options_.max_queue;
  // A key's max_concurrent limits its running jobs (the dispatcher leases
  // no more); --max-per-client bounds queued + running of keys without one.
  limits->owner_max_active =
      identity.max_concurrent > 0 ? 0 : options_.max_per_client;
  limits->owner_max_queued = identity.max_queued;
  return grpc::Status::OK;
}

grpc::Status VideoServiceImpl::Answer(
    const ClientIdentity& identity, const v1::GenerateVideoRequest& request,
    const std::string& request_id, const NewJob& new_job,
    const absl::StatusOr<AdmitResult>& admitted, JobRecord* job) {
  if (!admitted.ok()) return ToGrpc(admitted.status());
  switch (admitted->outcome) {
    case AdmitOutcome::kCreated:
      *job = admitted->job;
      shared_->metrics->jobs_total->Add({"QUEUED"}, 1);
      LogJobState(*job);
      shared_->dispatcher->Dispatch();
      return grpc::Status::OK;
    case AdmitOutcome::kExisting: {
      // AIP-155: the key names one request; another request under it is
      // refused instead of answered with the first one's job.
      const v1::GenerateVideoRequest& existing = admitted->job.request;
      v1::GenerateVideoRequest stored = new_job.request;
      if (request.seed() == 0) stored.set_seed(existing.seed());
      if (!google::protobuf::util::MessageDifferencer::Equals(existing,
                                                              stored)) {
        shared_->metrics->admission_rejections_total->Add({"invalid"}, 1);
        return RichError(
                   grpc::StatusCode::ALREADY_EXISTS,
                   absl::StrCat("request_id ", request_id, " was used for ",
                                JobName(JobKind::kVideo, admitted->job.id),
                                " with a different request; use a new "
                                "request_id"),
                   "REQUEST_ID_REUSED")
            .FieldViolation("request_id",
                            "already used with a different request")
            .Build();
      }
      *job = admitted->job;
      return grpc::Status::OK;
    }
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

void VideoServiceImpl::CancelJob(
    const std::string& id, const std::string& owner, const std::string& reason,
    std::function<void(absl::StatusOr<JobRecord>)> done) {
  shared_->store->CancelAsync(
      JobKind::kVideo, id, owner, reason,
      [dispatcher = shared_->dispatcher,
       done = std::move(done)](absl::StatusOr<CancelResult> cancelled) {
        if (cancelled.ok()) dispatcher->OnCancelled(*cancelled);
        if (done) {
          done(cancelled.ok() ? absl::StatusOr<JobRecord>(cancelled->job)
                              : cancelled.status());
        }
      });
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* VideoServiceImpl::GenerateVideo(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw) {
  using Stream = JobEventStream<v1::GenerateVideoEvent, grpc::ByteBuffer>;
  ClientIdentity identity;
  v1::GenerateVideoRequest request;
  grpc::Status status = Gate(ctx, &identity);
  if (status.ok()) status = ParseRequest(*raw, &request);
  if (!status.ok()) {
    return new RejectedStream<grpc::ByteBuffer>(status);
  }
  const std::string owner = identity.owner;
  auto* stream = new Stream(
      shared_->store, shared_->hub, JobKind::kVideo, 0,
      [this, owner](const std::string& id) {
        if (shared_->stopping) return;
        // Already finished jobs stay as they are.
        CancelJob(id, owner, "the GenerateVideo call ended", nullptr);
      });
  // The stream follows the job once it is on disk; this thread does not
  // wait.
  AdmitAsync(identity, request, "", "",
             [stream](grpc::Status answer, JobRecord job) {
               if (answer.ok()) {
                 stream->Admitted(job.id);
               } else {
                 stream->Refused(answer);
               }
             });
  return stream;
}

grpc::ServerUnaryReactor* VideoServiceImpl::CreateVideoJob(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw,
    grpc::ByteBuffer* response) {
  ClientIdentity identity;
  v1::CreateVideoJobRequest request;
  grpc::Status status = Gate(ctx, &identity);
  if (status.ok()) status = ParseRequest(*raw, &request);
  if (!status.ok()) return Done(ctx, status);
  // Answered from the store's completion once the job is on disk; this
  // thread does not wait.
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  AdmitAsync(identity, request.video(), request.request_id(), "video.",
             [this, reactor, response](grpc::Status answer, JobRecord job) {
               if (answer.ok()) *response = ToByteBuffer(Describe(job));
               reactor->Finish(answer);
             });
  return reactor;
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
  if (!status.ok()) return Done(ctx, status);
  // Answered once the cancellation is on disk; this thread does not wait.
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  CancelJob(job.id, identity.owner, "cancelled by the client",
            [this, reactor, response](absl::StatusOr<JobRecord> cancelled) {
              if (cancelled.ok()) *response = Describe(*cancelled);
              reactor->Finish(cancelled.ok() ? grpc::Status::OK
                                             : ToGrpc(cancelled.status()));
            });
  return reactor;
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
  if (status.ok() && job.state == v1::SUCCEEDED) {
    // A finished video has a known size: an offset past it is a client bug
    // (an empty OK stream would look like a complete download).
    const int64_t size = job.completed ? job.completed->size_bytes() : 0;
    if (request->from_offset() > size) {
      status = RichError(grpc::StatusCode::OUT_OF_RANGE,
                         absl::StrCat("from_offset ", request->from_offset(),
                                      " is past the end of the ", size,
                                      "-byte video"),
                         "OFFSET_OUT_OF_RANGE")
                   .Build();
    }
  }
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
  if (!status.ok()) return Done(ctx, status);
  // Answered once the deletion is on disk; its followers are woken by the
  // store's change observer.
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  shared_->store->DeleteAsync(
      JobKind::kVideo, job.id, identity.owner,
      [reactor, name = request->name()](absl::Status deleted) {
        if (deleted.ok()) {
          LogEvent("job_deleted",
                   {{"job_id", name}, {"reason", "deleted by the client"}});
        }
        reactor->Finish(ToGrpc(deleted));
      });
  return reactor;
}

std::vector<v1::Model> VideoServiceImpl::Models() {
  std::vector<v1::Model> out;
  std::map<std::string, size_t> by_id;
  for (const v1::Worker& w : shared_->dispatcher->ListWorkers()) {
    if (w.kind() != v1::WORKER_KIND_GENERATOR ||
        w.state() == v1::WORKER_STATE_DRAINING) {
      continue;
    }
    const v1::WorkerCapabilities& caps = w.capabilities();
    std::vector<v1::ModelLimits> published(caps.model_limits().begin(),
                                           caps.model_limits().end());
    if (published.empty()) {
      // A worker that publishes no limits: its models and size caps only.
      v1::ModelLimits l;
      if (caps.models_size() > 0) l.set_id(caps.models(0));
      for (int i = 1; i < caps.models_size(); ++i)
        l.add_aliases(caps.models(i));
      l.set_version(caps.model_version());
      l.set_max_width(caps.max_width());
      l.set_max_height(caps.max_height());
      l.set_max_frames(caps.max_frames());
      published.push_back(std::move(l));
    }
    for (const v1::ModelLimits& l : published) {
      auto [it, added] = by_id.emplace(l.id(), out.size());
      if (added) {
        out.emplace_back();
        *out.back().mutable_limits() = l;
      }
      v1::Model& m = out[it->second];
      m.add_workers(w.name());
      if (std::find(m.versions().begin(), m.versions().end(), l.version()) ==
          m.versions().end()) {
        m.add_versions(l.version());
      }
    }
  }
  absl::MutexLock lock(&models_mu_);
  if (!out.empty()) {
    last_models_ = out;
    return out;
  }
  if (!last_models_.empty()) {
    // Every generator left (drained, restarting): what they served is still
    // what the queue waits for.
    for (v1::Model m : last_models_) {
      m.clear_workers();
      out.push_back(std::move(m));
    }
  } else {
    for (const v1::ModelLimits& l : options_.catalogue) {
      out.emplace_back();
      *out.back().mutable_limits() = l;
    }
  }
  return out;
}

grpc::ServerUnaryReactor* VideoServiceImpl::ListModels(
    grpc::CallbackServerContext* ctx, const v1::ListModelsRequest* request,
    v1::ListModelsResponse* response) {
  (void)request;
  ClientIdentity identity;
  grpc::Status status = Gate(ctx, &identity);
  if (status.ok()) {
    for (v1::Model& m : Models()) *response->add_models() = std::move(m);
  }
  return Done(ctx, status);
}

}  // namespace lvs::server
