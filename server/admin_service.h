// AdminService: workers, queue statistics, training jobs and model reloads,
// behind the admin credential.
//
// Thread-safety: thread-safe; the members it points to are.
#ifndef LVS_SERVER_ADMIN_SERVICE_H_
#define LVS_SERVER_ADMIN_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "lumina/video/v1/admin_service.grpc.pb.h"
#include "server/auth.h"
#include "server/dispatcher.h"
#include "server/event_hub.h"
#include "server/job_store.h"
#include "server/server_metrics.h"
#include "server/service_state.h"

namespace lvs::server {

// See the file comment.
class AdminServiceImpl final : public v1::AdminService::CallbackService {
 public:
  // `shared` is not owned and outlives the service. `max_queue` is reported
  // in QueueStats.
  AdminServiceImpl(ServiceContext* shared, int64_t max_queue);

  grpc::ServerUnaryReactor* ListWorkers(
      grpc::CallbackServerContext* ctx, const v1::ListWorkersRequest* request,
      v1::ListWorkersResponse* response) override;
  grpc::ServerUnaryReactor* DrainWorker(grpc::CallbackServerContext* ctx,
                                        const v1::DrainWorkerRequest* request,
                                        v1::Worker* response) override;
  grpc::ServerUnaryReactor* GetQueueStats(
      grpc::CallbackServerContext* ctx, const v1::GetQueueStatsRequest* request,
      v1::QueueStats* response) override;
  grpc::ServerUnaryReactor* CreateTrainingJob(
      grpc::CallbackServerContext* ctx,
      const v1::CreateTrainingJobRequest* request,
      v1::TrainingJob* response) override;
  grpc::ServerUnaryReactor* GetTrainingJob(
      grpc::CallbackServerContext* ctx,
      const v1::GetTrainingJobRequest* request,
      v1::TrainingJob* response) override;
  grpc::ServerUnaryReactor* ListTrainingJobs(
      grpc::CallbackServerContext* ctx,
      const v1::ListTrainingJobsRequest* request,
      v1::ListTrainingJobsResponse* response) override;
  grpc::ServerWriteReactor<v1::TrainingEvent>* WatchTrainingJob(
      grpc::CallbackServerContext* ctx,
      const v1::WatchTrainingJobRequest* request) override;
  grpc::ServerUnaryReactor* CancelTrainingJob(
      grpc::CallbackServerContext* ctx,
      const v1::CancelTrainingJobRequest* request,
      v1::TrainingJob* response) override;
  grpc::ServerUnaryReactor* ReloadModel(
      grpc::CallbackServerContext* ctx, const v1::ReloadModelRequest* request,
      v1::ReloadModelResponse* response) override;

 private:
  // Checks readiness and the admin credential.
  grpc::Status Gate(grpc::CallbackServerContext* ctx) const;
  // Loads training job `name`.
  grpc::Status LoadTraining(const std::string& name, JobRecord* job);

  ServiceContext* const shared_;
  const int64_t max_queue_;
};

}  // namespace lvs::server

#endif  // LVS_SERVER_ADMIN_SERVICE_H_
