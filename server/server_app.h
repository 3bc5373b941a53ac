// lvs-server assembled: the public gRPC port (VideoService, AdminService,
// grpc.health.v1.Health, reflection), the worker port (WorkerService), an
// optional plaintext health-only port, the HTTP metrics port, the job store,
// the dispatcher and its ticker thread, and the drain sequence.
//
// Start-up: Listen() binds every port with health NOT_SERVING; OpenStore()
// opens the store (re-queueing jobs that were running), then turns health
// SERVING. Drain(): health NOT_SERVING and no new jobs, no new leases, wait
// up to the grace period for running jobs, re-queue the rest, shut down.
//
// Thread-safety: Listen/OpenStore/Drain/Shutdown from one controlling thread;
// the accessors are safe from any thread once the server is open.
#ifndef LVS_SERVER_SERVER_APP_H_
#define LVS_SERVER_SERVER_APP_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "rpc/http_endpoint.h"
#include "rpc/metrics.h"
#include "server/admin_service.h"
#include "server/auth.h"
#include "server/clock.h"
#include "server/data_dir_lock.h"
#include "server/dispatcher.h"
#include "server/event_hub.h"
#include "server/grpc_metrics.h"
#include "server/job_store.h"
#include "server/server_metrics.h"
#include "server/service_state.h"
#include "server/video_service.h"
#include "server/worker_service.h"

namespace lvs::server {

// Everything the flags of lvs-server set.
struct ServerOptions {
  std::string listen = "127.0.0.1:50051";
  std::string worker_listen = "127.0.0.1:50052";
  // Empty: no HTTP port.
  std::string metrics_listen = "127.0.0.1:9464";
  // Empty: no plaintext health-only port.
  std::string health_listen;
  JobStoreOptions store;
  VideoServiceOptions video;
  DispatcherOptions dispatcher;
  absl::Duration drain_grace = absl::Seconds(30);
  // How often leases are expired and results collected.
  absl::Duration tick_interval = absl::Seconds(1);
  std::string api_keys_file;
  std::string admin_key_file;
  std::string worker_token_file;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  int max_receive_message_bytes = 4 << 20;
  // Not owned; a RealClock when null.
  Clock* clock = nullptr;
};

// See the file comment.
class ServerApp {
 public:
  // Loads credentials and TLS files; binds nothing yet.
  static absl::StatusOr<std::unique_ptr<ServerApp>> Create(
      ServerOptions options);
  ~ServerApp();

  // Binds every port; health reports NOT_SERVING.
  absl::Status Listen();
  // Opens the store, starts the ticker and reports SERVING.
  absl::Status OpenStore();
  // Listen() then OpenStore().
  absl::Status Start();
  // The SIGTERM sequence (see the file comment); returns after shutdown.
  void Drain();
  // Stops everything at once (running jobs are re-queued on the next start).
  void Shutdown();

  // Bound ports (after Listen()).
  int port() const { return port_; }
  int worker_port() const { return worker_port_; }
  int health_port() const { return health_port_; }
  int metrics_port() const { return http_ ? http_->port() : 0; }

  // The Prometheus text exposition of the server's metrics.
  std::string RenderMetrics() { return registry_.Render(); }
  // The store and dispatcher (after OpenStore()).
  JobStore* store() { return store_.get(); }
  Dispatcher* dispatcher() { return dispatcher_.get(); }

 private:
  explicit ServerApp(ServerOptions options);
  void SetServing(bool serving);
  void TickLoop();

  const ServerOptions options_;
  RealClock real_clock_;
  Clock* const clock_;
  rpc::MetricsRegistry registry_;
  ServerMetrics metrics_;
  EventHub hub_;
  Credentials credentials_;
  ServiceContext shared_;
  std::shared_ptr<grpc::ServerCredentials> tls_;
  std::optional<DataDirLock> data_dir_lock_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<VideoServiceImpl> video_;
  std::unique_ptr<AdminServiceImpl> admin_;
  std::unique_ptr<WorkerServiceImpl> worker_;
  std::unique_ptr<grpc::Server> public_server_;
  std::unique_ptr<grpc::Server> worker_server_;
  std::unique_ptr<grpc::Server> health_server_;
  std::unique_ptr<rpc::HttpEndpoint> http_;
  int port_ = 0;
  int worker_port_ = 0;
  int health_port_ = 0;
  absl::Notification stop_ticker_;
  std::thread ticker_;
  bool shut_down_ = false;
};

}  // namespace lvs::server

#endif  // LVS_SERVER_SERVER_APP_H_
