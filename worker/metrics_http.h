// The worker's HTTP endpoint (`--metrics-listen`): `/metrics` (the worker's
// counters, copied from Worker::Snapshot() at each scrape, its build info and
// the process metrics; rpc::MetricsRegistry) and `/healthz` (200 while
// connected to the server, 503 otherwise), served by rpc::HttpEndpoint on its
// own threads.
//
// Thread-safety: Start/Stop from one thread; the handlers only read
// `Worker::Snapshot()`, which is thread-safe.
#ifndef LVS_WORKER_METRICS_HTTP_H_
#define LVS_WORKER_METRICS_HTTP_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "rpc/http_endpoint.h"
#include "rpc/metrics.h"
#include "worker/worker.h"

namespace lvs::worker {

// Serves the endpoint for one worker.
class MetricsHttpServer {
 public:
  // Serves `worker` (not owned; outlives the server).
  MetricsHttpServer(const std::string& name, const Worker* worker);
  ~MetricsHttpServer();

  // Listens on `listen` ("host:port"); INVALID_ARGUMENT naming
  // --metrics-listen when it is malformed, UNAVAILABLE when bind fails.
  absl::Status Start(const std::string& listen);

  // Stops listening and joins the server thread.
  void Stop();

 private:
  const std::string name_;
  const Worker* worker_;
  rpc::MetricsRegistry registry_;
  std::unique_ptr<rpc::HttpEndpoint> http_;
};

}  // namespace lvs::worker

#endif  // LVS_WORKER_METRICS_HTTP_H_
