#include "server/server_metrics.h"

#include <vector>

namespace lvs::server {
namespace {

const std::vector<double>& JobBuckets() {
  static const std::vector<double> b = {0.1, 0.5, 1,   2.5, 5,    10,  30,
                                        60,  120, 300, 600, 1200, 1800};
  return b;
}

}  // namespace

ServerMetrics::ServerMetrics(rpc::MetricsRegistry* r)
    : registry(r),
      jobs_total(r->Counter("lvs_jobs_total",
                            "Video jobs that entered each state.", {"state"})),
      queue_depth(r->Gauge("lvs_queue_depth",
                           "Video jobs waiting for a worker, per priority.",
                           {"priority"})),
      workers(r->Gauge("lvs_workers",
                       "Connected workers (kind generator) and trainers (kind "
                       "trainer), per state.",
                       {"kind", "state"})),
      worker_gpu_memory_bytes(r->Gauge(
          "lvs_worker_gpu_memory_bytes",
          "GPU memory in use as last reported by each worker.", {"worker"})),
      queue_wait_seconds(r->Histogram(
          "lvs_queue_wait_seconds",
          "Time from admission to the start of each attempt.", JobBuckets())),
      job_duration_seconds(r->Histogram(
          "lvs_job_duration_seconds",
          "Time from the start of the successful attempt to completion.",
          JobBuckets())),
      denoise_step_seconds(
          r->Histogram("lvs_denoise_step_seconds",
                       "Wall time of one denoising step as seen by the server.",
                       {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})),
      time_to_first_chunk_seconds(r->Histogram(
          "lvs_time_to_first_chunk_seconds",
          "Time from the start of an attempt to its first MP4 chunk.",
          JobBuckets())),
      grpc_requests_total(r->Counter("lvs_grpc_requests_total",
                                     "Finished gRPC calls by method and code.",
                                     {"method", "code"})),
      grpc_request_duration_seconds(
          r->Histogram("lvs_grpc_request_duration_seconds",
                       "Duration of gRPC calls by method.",
                       {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                        0.25, 0.5, 1, 2.5, 5, 10, 60, 600},
                       {"method"})),
      training_jobs_total(r->Counter("lvs_training_jobs_total",
                                     "Training jobs that entered each state.",
                                     {"state"})),
      admission_rejections_total(r->Counter(
          "lvs_admission_rejections_total",
          "Video jobs refused at admission, by reason.", {"reason"})),
      store_reads_total(r->Counter(
          "lvs_store_reads_total",
          "Queries on the job store's read connection (job lookups, lists, "
          "event reads, counts).")) {
  for (const char* state :
       {"QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"}) {
    jobs_total->Add({state}, 0);
    training_jobs_total->Add({state}, 0);
  }
  store_reads_total->Add({}, 0);
  r->AddBuildInfo("lvs_server_build_info");
}

}  // namespace lvs::server
