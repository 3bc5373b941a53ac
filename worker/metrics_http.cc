#include "worker/metrics_http.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"

namespace lvs::worker {
namespace {

// Escapes a label value (text format 0.0.4: backslash, quote, newline).
std::string EscapeLabel(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string RenderWorkerMetrics(const std::string& name,
                                const WorkerCounters& c) {
  const std::string w = absl::StrCat("worker=\"", EscapeLabel(name), "\"");
  std::string out;
  absl::StrAppend(
      &out,
      "# HELP lvs_worker_connected Whether the worker holds a stream to the "
      "server.\n# TYPE lvs_worker_connected gauge\n",
      "lvs_worker_connected{", w, "} ", c.connected ? 1 : 0, "\n",
      "# HELP lvs_worker_busy Whether the worker runs a job.\n"
      "# TYPE lvs_worker_busy gauge\n",
      "lvs_worker_busy{", w, "} ", c.busy ? 1 : 0, "\n");
  absl::StrAppend(
      &out,
      "# HELP lvs_worker_jobs_total Jobs the worker finished, by outcome.\n"
      "# TYPE lvs_worker_jobs_total counter\n",
      "lvs_worker_jobs_total{", w, ",outcome=\"succeeded\"} ", c.jobs_succeeded,
      "\n", "lvs_worker_jobs_total{", w, ",outcome=\"failed\"} ", c.jobs_failed,
      "\n", "lvs_worker_jobs_total{", w, ",outcome=\"cancelled\"} ",
      c.jobs_cancelled, "\n");
  absl::StrAppend(
      &out,
      "# HELP lvs_worker_denoise_steps_total Denoising steps (sampler grid "
      "intervals) the worker's model finished.\n"
      "# TYPE lvs_worker_denoise_steps_total counter\n",
      "lvs_worker_denoise_steps_total{", w, "} ", c.denoise_steps, "\n");
  absl::StrAppend(
      &out,
      "# HELP lvs_worker_connects_total Streams opened to the server.\n"
      "# TYPE lvs_worker_connects_total counter\n",
      "lvs_worker_connects_total{", w, "} ", c.connects, "\n",
      "# HELP lvs_worker_gpu_memory_bytes Device memory the model uses.\n"
      "# TYPE lvs_worker_gpu_memory_bytes gauge\n",
      "lvs_worker_gpu_memory_bytes{", w, "} ", c.device_memory_bytes, "\n");
  return out;
}

MetricsHttpServer::MetricsHttpServer(const std::string& name,
                                     const Worker* worker)
    : name_(name), worker_(worker) {}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

absl::Status MetricsHttpServer::Start(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-listen: '", listen, "' is not host:port"));
  }
  const std::string host = listen.substr(0, colon);
  http_ = std::make_unique<httplib::Server>();
  http_->Get("/metrics",
             [this](const httplib::Request&, httplib::Response& res) {
               res.set_content(RenderWorkerMetrics(name_, worker_->Snapshot()),
                               "text/plain; version=0.0.4; charset=utf-8");
             });
  http_->Get(
      "/healthz", [this](const httplib::Request&, httplib::Response& res) {
        const bool connected = worker_->Snapshot().connected;
        res.status = connected ? 200 : 503;
        res.set_content(connected ? "ok\n" : "not connected\n", "text/plain");
      });
  if (!http_->bind_to_port(host.c_str(), port)) {
    return absl::UnavailableError(
        absl::StrCat("--metrics-listen: cannot bind ", listen));
  }
  thread_ = std::thread([this] { http_->listen_after_bind(); });
  return absl::OkStatus();
}

void MetricsHttpServer::Stop() {
  if (http_ != nullptr) http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace lvs::worker
