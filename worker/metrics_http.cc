#include "worker/metrics_http.h"

#include <utility>

namespace lvs::worker {

MetricsHttpServer::MetricsHttpServer(const std::string& name,
                                     const Worker* worker)
    : name_(name), worker_(worker) {
  rpc::MetricsRegistry& r = registry_;
  const std::vector<std::string> w = {"worker"};
  rpc::MetricFamily* connected =
      r.Gauge("lvs_worker_connected",
              "Whether the worker holds a stream to the server.", w);
  rpc::MetricFamily* busy =
      r.Gauge("lvs_worker_busy", "Whether the worker runs a job.", w);
  rpc::MetricFamily* jobs =
      r.Counter("lvs_worker_jobs_total",
                "Jobs the worker finished, by outcome.", {"worker", "outcome"});
  rpc::MetricFamily* steps = r.Counter(
      "lvs_worker_denoise_steps_total",
      "Denoising steps (sampler grid intervals) the worker's model finished.",
      w);
  rpc::MetricFamily* forwards = r.Counter(
      "lvs_worker_dit_forwards_total",
      "DiT forwards (one per CFG branch and step) of succeeded jobs, computed "
      "in full or reused from the step cache.",
      {"worker", "kind"});
  rpc::MetricFamily* connects = r.Counter("lvs_worker_connects_total",
                                          "Streams opened to the server.", w);
  rpc::MetricFamily* devices =
      r.Gauge("lvs_worker_devices", "Devices the worker's model runs on.", w);
  rpc::MetricFamily* memory = r.Gauge("lvs_worker_gpu_memory_bytes",
                                      "Device memory the model uses.", w);
  r.AddBuildInfo("lvs_worker_build_info", {{"worker", name_}});
  // The worker keeps its own counts: copy a snapshot at each scrape.
  r.AddCollector([=] {
    const WorkerCounters c = worker_->Snapshot();
    const std::string& n = name_;
    connected->Set({n}, c.connected ? 1 : 0);
    busy->Set({n}, c.busy ? 1 : 0);
    jobs->Set({n, "succeeded"}, static_cast<double>(c.jobs_succeeded));
    jobs->Set({n, "failed"}, static_cast<double>(c.jobs_failed));
    jobs->Set({n, "cancelled"}, static_cast<double>(c.jobs_cancelled));
    steps->Set({n}, static_cast<double>(c.denoise_steps));
    forwards->Set({n, "computed"},
                  static_cast<double>(c.dit_forwards_computed));
    forwards->Set({n, "cached"}, static_cast<double>(c.dit_forwards_cached));
    connects->Set({n}, static_cast<double>(c.connects));
    devices->Set({n}, c.devices);
    memory->Set({n}, static_cast<double>(c.device_memory_bytes));
  });
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

absl::Status MetricsHttpServer::Start(const std::string& listen) {
  rpc::HttpEndpoint::Handlers handlers;
  handlers.metrics = [this] { return registry_.Render(); };
  handlers.healthy = [this] { return worker_->Snapshot().connected; };
  absl::StatusOr<std::unique_ptr<rpc::HttpEndpoint>> http =
      rpc::HttpEndpoint::Start(listen, std::move(handlers));
  if (!http.ok()) return http.status();
  http_ = std::move(*http);
  return absl::OkStatus();
}

void MetricsHttpServer::Stop() { http_.reset(); }

}  // namespace lvs::worker
