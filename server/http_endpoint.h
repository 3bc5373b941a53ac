// The plain HTTP port of lvs-server (cpp-httplib on its own threads):
// `/metrics` (Prometheus text format 0.0.4), `/healthz` (the process is alive)
// and `/readyz` (200 while the server admits jobs, 503 before the store is
// open and while draining).
//
// Thread-safety: the handlers run on httplib's threads; they must be
// thread-safe. Start/stop from one thread.
#ifndef LVS_SERVER_HTTP_ENDPOINT_H_
#define LVS_SERVER_HTTP_ENDPOINT_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace lvs::server {

// Splits "host:port" (port 0 picks a free one); INVALID_ARGUMENT naming
// `flag` when malformed.
absl::StatusOr<std::pair<std::string, int>> SplitHostPort(
    const std::string& address, const std::string& flag);

// See the file comment.
class HttpEndpoint {
 public:
  // What the endpoints answer.
  struct Handlers {
    std::function<std::string()> metrics;
    std::function<bool()> ready;
  };

  // Binds `address` ("host:port") and serves until destroyed.
  static absl::StatusOr<std::unique_ptr<HttpEndpoint>> Start(
      const std::string& address, Handlers handlers);
  ~HttpEndpoint();

  // The bound port.
  int port() const { return port_; }

 private:
  HttpEndpoint() = default;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace lvs::server

#endif  // LVS_SERVER_HTTP_ENDPOINT_H_
