// VideoService: admission (validation, API keys, limits, durable enqueue),
// the AIP-151 job methods and the GenerateVideo/WatchVideoJob streams.
// Handlers use the callback API and never wait for a worker: they touch the
// store and the dispatcher only.
//
// Thread-safety: thread-safe; the members it points to are.
#ifndef LVS_SERVER_VIDEO_SERVICE_H_
#define LVS_SERVER_VIDEO_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lumina/video/v1/video_service.grpc.pb.h"
#include "server/auth.h"
#include "server/dispatcher.h"
#include "server/event_hub.h"
#include "server/job_store.h"
#include "server/model_admission.h"
#include "server/server_metrics.h"
#include "server/service_state.h"
#include "server/validation.h"

namespace lvs::server {

// Admission settings of VideoService.
struct VideoServiceOptions {
  AdmissionCaps caps;
  // QUEUED video jobs at most (0: unlimited).
  int64_t max_queue = 1000;
  // QUEUED + RUNNING jobs per client when its key sets no limit (0: none).
  int64_t max_per_client = 0;
  // RetryInfo delay sent with RESOURCE_EXHAUSTED and UNAVAILABLE.
  absl::Duration retry_delay = absl::Seconds(5);
  // Models admission checks against before any generator registered
  // (model_admission.h); empty: only `caps` until one does.
  std::vector<v1::ModelLimits> catalogue = {LuminaVideoLimits()};
};

// The generated callback service with CreateVideoJob and GenerateVideo
// taking their request as bytes (request_parse.h).
using VideoServiceBase = v1::VideoService::WithRawCallbackMethod_CreateVideoJob<
    v1::VideoService::WithRawCallbackMethod_GenerateVideo<
        v1::VideoService::CallbackService>>;

// See the file comment.
class VideoServiceImpl final : public VideoServiceBase {
 public:
  // `shared` is not owned and outlives the service.
  VideoServiceImpl(ServiceContext* shared, VideoServiceOptions options);

  // GenerateVideoRequest in, GenerateVideoEvent out, serialized.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* GenerateVideo(
      grpc::CallbackServerContext* ctx,
      const grpc::ByteBuffer* request) override;
  // CreateVideoJobRequest in, VideoJob out, serialized.
  grpc::ServerUnaryReactor* CreateVideoJob(grpc::CallbackServerContext* ctx,
                                           const grpc::ByteBuffer* request,
                                           grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetVideoJob(grpc::CallbackServerContext* ctx,
                                        const v1::GetVideoJobRequest* request,
                                        v1::VideoJob* response) override;
  grpc::ServerUnaryReactor* ListVideoJobs(
      grpc::CallbackServerContext* ctx, const v1::ListVideoJobsRequest* request,
      v1::ListVideoJobsResponse* response) override;
  grpc::ServerUnaryReactor* CancelVideoJob(
      grpc::CallbackServerContext* ctx,
      const v1::CancelVideoJobRequest* request,
      v1::VideoJob* response) override;
  grpc::ServerWriteReactor<v1::GenerateVideoEvent>* WatchVideoJob(
      grpc::CallbackServerContext* ctx,
      const v1::WatchVideoJobRequest* request) override;
  grpc::ServerUnaryReactor* DeleteVideoJob(
      grpc::CallbackServerContext* ctx,
      const v1::DeleteVideoJobRequest* request,
      google::protobuf::Empty* response) override;
  grpc::ServerUnaryReactor* ListModels(
      grpc::CallbackServerContext* ctx, const v1::ListModelsRequest* request,
      v1::ListModelsResponse* response) override;

 private:
  // The models of the connected generators (one entry per model id); when
  // none is connected, the last ones seen (their workers may come back), or
  // the catalogue before any registered.
  std::vector<v1::Model> Models();
  // Checks readiness and the API key.
  grpc::Status Gate(grpc::CallbackServerContext* ctx,
                    ClientIdentity* identity) const;
  // Validates and stores a new job: `done` runs with the outcome once the
  // job is on disk (on the store's completion thread), or at once when the
  // request is refused before reaching the store.
  void AdmitAsync(const ClientIdentity& identity,
                  const v1::GenerateVideoRequest& request,
                  const std::string& request_id, const std::string& prefix,
                  std::function<void(grpc::Status, JobRecord)> done);
  // The checks before the store: fills `job` and `limits`.
  grpc::Status Prepare(const ClientIdentity& identity,
                       const v1::GenerateVideoRequest& request,
                       const std::string& request_id, const std::string& prefix,
                       NewJob* job, AdmitLimits* limits);
  // Turns the store's answer into the RPC's.
  grpc::Status Answer(const ClientIdentity& identity,
                      const v1::GenerateVideoRequest& request,
                      const std::string& request_id, const NewJob& new_job,
                      const absl::StatusOr<AdmitResult>& admitted,
                      JobRecord* job);
  // Loads the caller's job named `name` (NOT_FOUND for another owner's).
  grpc::Status Load(const ClientIdentity& identity, const std::string& name,
                    JobRecord* job);
  // Cancels job `id` for `owner` and tells its worker; `done` (optional)
  // runs once the cancellation is on disk.
  void CancelJob(const std::string& id, const std::string& owner,
                 const std::string& reason,
                 std::function<void(absl::StatusOr<JobRecord>)> done);
  v1::VideoJob Describe(const JobRecord& job);

  ServiceContext* const shared_;
  const VideoServiceOptions options_;
  absl::Mutex models_mu_;
  std::vector<v1::Model> last_models_ ABSL_GUARDED_BY(models_mu_);
};

}  // namespace lvs::server

#endif  // LVS_SERVER_VIDEO_SERVICE_H_
