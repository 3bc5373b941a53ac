#include "worker/metrics_http.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

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
      "# HELP lvs_worker_dit_forwards_total DiT forwards (one per CFG branch "
      "and step) of succeeded jobs, computed in full or reused from the step "
      "cache.\n"
      "# TYPE lvs_worker_dit_forwards_total counter\n",
      "lvs_worker_dit_forwards_total{", w, ",kind=\"computed\"} ",
      c.dit_forwards_computed, "\n", "lvs_worker_dit_forwards_total{", w,
      ",kind=\"cached\"} ", c.dit_forwards_cached, "\n");
  absl::StrAppend(
      &out,
      "# HELP lvs_worker_connects_total Streams opened to the server.\n"
      "# TYPE lvs_worker_connects_total counter\n",
      "lvs_worker_connects_total{", w, "} ", c.connects, "\n",
      "# HELP lvs_worker_devices Devices the worker's model runs on.\n"
      "# TYPE lvs_worker_devices gauge\n",
      "lvs_worker_devices{", w, "} ", c.devices, "\n",
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
  rpc::HttpEndpoint::Handlers handlers;
  handlers.metrics = [this] {
    return RenderWorkerMetrics(name_, worker_->Snapshot());
  };
  handlers.healthy = [this] { return worker_->Snapshot().connected; };
  absl::StatusOr<std::unique_ptr<rpc::HttpEndpoint>> http =
      rpc::HttpEndpoint::Start(listen, std::move(handlers));
  if (!http.ok()) return http.status();
  http_ = std::move(*http);
  return absl::OkStatus();
}

void MetricsHttpServer::Stop() { http_.reset(); }

}  // namespace lvs::worker
