// WorkerService: one bidirectional stream per worker or trainer process.
// The first message must be RegisterWorker; after that every message goes to
// the Dispatcher, and the dispatcher's messages are written back in order,
// one write in flight at a time. When the stream ends the worker is
// unregistered and its lease released.
//
// Thread-safety: thread-safe.
#ifndef LVS_SERVER_WORKER_SERVICE_H_
#define LVS_SERVER_WORKER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "lumina/video/v1/worker_service.grpc.pb.h"
#include "server/auth.h"
#include "server/dispatcher.h"
#include "server/service_state.h"

namespace lvs::server {

// See the file comment.
class WorkerServiceImpl final : public v1::WorkerService::CallbackService {
 public:
  // `shared` is not owned and outlives the service.
  explicit WorkerServiceImpl(ServiceContext* shared);

  grpc::ServerBidiReactor<v1::WorkerMessage, v1::ServerMessage>* Connect(
      grpc::CallbackServerContext* ctx) override;

 private:
  ServiceContext* const shared_;
};

}  // namespace lvs::server

#endif  // LVS_SERVER_WORKER_SERVICE_H_
