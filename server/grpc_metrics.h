// A server interceptor that counts every finished gRPC call by method and
// status code (`lvs_grpc_requests_total`) and records its duration
// (`lvs_grpc_request_duration_seconds`). A call that ends without sending a
// status (the client went away) counts as CANCELLED.
//
// Thread-safety: one interceptor per call; the metric families are
// thread-safe.
#ifndef LVS_SERVER_GRPC_METRICS_H_
#define LVS_SERVER_GRPC_METRICS_H_

#include <grpcpp/support/server_interceptor.h>

#include <string>

#include "server/server_metrics.h"

namespace lvs::server {

// The canonical name of a status code ("OK", "INVALID_ARGUMENT", ...).
std::string StatusCodeName(grpc::StatusCode code);

// Creates one metrics interceptor per call.
class GrpcMetricsInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `metrics` outlives every server using the factory.
  explicit GrpcMetricsInterceptorFactory(ServerMetrics* metrics)
      : metrics_(metrics) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  ServerMetrics* const metrics_;
};

}  // namespace lvs::server

#endif  // LVS_SERVER_GRPC_METRICS_H_
