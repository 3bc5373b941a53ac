// The plain HTTP port of the lvs processes (cpp-httplib on its own threads):
// `/metrics` (Prometheus text format 0.0.4), `/healthz` and, when asked for,
// `/readyz`. lvs-server answers /healthz while alive and /readyz while it
// admits jobs; lvs-worker and lvs-trainer answer /healthz while connected to
// the server. The port is bound with SO_REUSEADDR only (cpp-httplib's default
// SO_REUSEPORT would let a second process bind it and take half the scrapes).
// Torch-free and gRPC-free (its own library, lvs_http_endpoint).
//
// Thread-safety: the handlers run on httplib's threads; they must be
// thread-safe. Start/stop from one thread.
#ifndef LVS_RPC_HTTP_ENDPOINT_H_
#define LVS_RPC_HTTP_ENDPOINT_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace lvs::rpc {

// Splits "host:port" (port 0 picks a free one); INVALID_ARGUMENT naming
// `flag` when malformed.
absl::StatusOr<std::pair<std::string, int>> SplitHostPort(
    const std::string& address, const std::string& flag);

// See the file comment.
class HttpEndpoint {
 public:
  // What the endpoints answer.
  struct Handlers {
    // The exposition text of /metrics.
    std::function<std::string()> metrics;
    // /healthz: 200 "ok" while it returns true (always when unset), else
    // 503 with `unhealthy_text`.
    std::function<bool()> healthy;
    std::string unhealthy_text = "not connected";
    // /readyz: 200 "ready" or 503 "not ready"; no /readyz when unset.
    std::function<bool()> ready;
  };

  // Binds `address` ("host:port"; port 0 picks a free one) and serves until
  // destroyed. `flag` names the address in errors: INVALID_ARGUMENT when
  // malformed, UNAVAILABLE when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpEndpoint>> Start(
      const std::string& address, Handlers handlers,
      const std::string& flag = "metrics-listen");
  ~HttpEndpoint();

  // The bound port.
  int port() const { return port_; }

 private:
  HttpEndpoint() = default;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace lvs::rpc

#endif  // LVS_RPC_HTTP_ENDPOINT_H_
