// lvs-gateway: the `/v1/videos` HTTP API and the web page in front of an
// lvs-server (see gateway/gateway.h and the README). SIGTERM or SIGINT stops
// it.
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/cli_parse.h"
#include "common/log.h"
#include "common/shutdown_signal.h"
#include "gateway/gateway.h"

int main(int argc, char** argv) {
  CLI::App app{
      "lvs-gateway: the /v1/videos HTTP API and web page of an lvs-server"};
  lvs::gateway::GatewayOptions options;
  options.server.target = "127.0.0.1:50051";
  std::string cors;
  int deadline_s = 30, io_timeout_s = 30;
  app.add_option("--server", options.server.target,
                 "host:port of lvs-server's public gRPC port");
  app.add_option("--listen", options.listen,
                 "host:port to serve HTTP on (port 0: any free port)");
  app.add_option("--tls-ca", options.server.tls_ca,
                 "CA of the server certificate (enables TLS to the server)");
  app.add_option("--tls-cert", options.server.tls_cert,
                 "client certificate for mutual TLS");
  app.add_option("--tls-key", options.server.tls_key,
                 "client key for mutual TLS");
  app.add_option("--cors-origin", cors,
                 "comma-separated origins allowed to call the API from other "
                 "pages, or * (default: none, no CORS headers)");
  app.add_option("--max-body-bytes", options.max_body_bytes,
                 "largest request body accepted (413 above)");
  app.add_option("--threads", options.threads,
                 "HTTP connection threads (connections served at once)");
  app.add_option("--max-pending", options.max_pending,
                 "accepted connections waiting for a thread before accepting "
                 "pauses");
  app.add_option("--max-streams", options.max_streams,
                 "concurrent event streams and followed downloads (503 above; "
                 "less than --threads)");
  app.add_option("--call-deadline-seconds", deadline_s,
                 "deadline of each short gRPC call to the server");
  app.add_option("--io-timeout-seconds", io_timeout_s,
                 "HTTP read, write and keep-alive timeout");
  app.add_option("--default-fps", options.default_fps,
                 "frame rate that turns `seconds` into frames when a request "
                 "gives no fps");
  LVS_CLI_PARSE(app, argc, argv);
  lvs::common::SetLogProcess("lvs-gateway");
  options.call_deadline = absl::Seconds(deadline_s);
  options.io_timeout = absl::Seconds(io_timeout_s);
  for (absl::string_view o :
       absl::StrSplit(cors, ',', absl::SkipWhitespace())) {
    options.cors_origins.emplace_back(o);
  }
  if (absl::Status s = lvs::common::InstallShutdownSignalHandlers(); !s.ok()) {
    std::fprintf(stderr, "lvs-gateway: %s\n", s.ToString().c_str());
    return 2;
  }
  auto gateway = lvs::gateway::Gateway::Start(options);
  if (!gateway.ok()) {
    std::fprintf(stderr, "lvs-gateway: %s\n",
                 gateway.status().ToString().c_str());
    return 2;
  }
  lvs::common::LogEvent(
      "listening",
      {{"msg", absl::StrCat("lvs-gateway on http://",
                            options.listen.substr(0, options.listen.rfind(':')),
                            ":", (*gateway)->port(), "/ (server ",
                            options.server.target, ")")},
       {"port", (*gateway)->port()}});
  lvs::common::WaitForShutdownSignal();
  lvs::common::LogEvent("signal", {{"msg", "stopping"}});
  gateway->reset();
  return 0;
}
