#include "rpc/http_endpoint.h"

#include <httplib.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace lvs::rpc {

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(
    const std::string& address, const std::string& flag) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, "=", address, ": expected host:port, e.g. 127.0.0.1:9464"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return std::make_pair(host, port);
}

absl::StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(
    const std::string& address, Handlers handlers, const std::string& flag) {
  auto host_port = SplitHostPort(address, flag);
  if (!host_port.ok()) return host_port.status();
  std::unique_ptr<HttpEndpoint> ep(new HttpEndpoint());
  ep->server_ = std::make_unique<httplib::Server>();
  httplib::Server& s = *ep->server_;
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  s.Get("/metrics", [h = handlers](const httplib::Request&,
                                   httplib::Response& res) {
    res.set_content(h.metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
  s.Get("/healthz", [h = handlers](const httplib::Request&,
                                   httplib::Response& res) {
    const bool healthy = !h.healthy || h.healthy();
    res.status = healthy ? 200 : 503;
    res.set_content(healthy ? "ok\n" : h.unhealthy_text + "\n", "text/plain");
  });
  if (handlers.ready) {
    s.Get("/readyz",
          [h = handlers](const httplib::Request&, httplib::Response& res) {
            const bool ready = h.ready();
            res.status = ready ? 200 : 503;
            res.set_content(ready ? "ready\n" : "not ready\n", "text/plain");
          });
  }
  const auto& [host, port] = *host_port;
  if (port == 0) {
    ep->port_ = s.bind_to_any_port(host);
  } else {
    ep->port_ = s.bind_to_port(host, port) ? port : -1;
  }
  if (ep->port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("--", flag, ": cannot bind ", address));
  }
  ep->thread_ = std::thread(
      [server = ep->server_.get()] { server->listen_after_bind(); });
  return ep;
}

HttpEndpoint::~HttpEndpoint() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace lvs::rpc
