// The metric families of lvs-server (names fixed by the serving contract).
//
// Thread-safety: the families are thread-safe; the struct is immutable after
// construction.
#ifndef LVS_SERVER_SERVER_METRICS_H_
#define LVS_SERVER_SERVER_METRICS_H_

#include "rpc/metrics.h"

namespace lvs::server {

// Pointers into a registry; the registry outlives this struct.
struct ServerMetrics {
  // Creates every family in `registry`, with the job states at 0.
  explicit ServerMetrics(rpc::MetricsRegistry* registry);

  rpc::MetricsRegistry* registry;
  rpc::MetricFamily* jobs_total;                     // {state}: state changes.
  rpc::MetricFamily* queue_depth;                    // {priority}
  rpc::MetricFamily* workers;                        // {state}
  rpc::MetricFamily* worker_gpu_memory_bytes;        // {worker}
  rpc::MetricFamily* queue_wait_seconds;             // Histogram.
  rpc::MetricFamily* job_duration_seconds;           // Histogram.
  rpc::MetricFamily* denoise_step_seconds;           // Histogram.
  rpc::MetricFamily* time_to_first_chunk_seconds;    // Histogram.
  rpc::MetricFamily* grpc_requests_total;            // {method, code}
  rpc::MetricFamily* grpc_request_duration_seconds;  // {method} histogram.
  rpc::MetricFamily* training_jobs_total;            // {state}
  rpc::MetricFamily* admission_rejections_total;     // {reason}
  rpc::MetricFamily* store_reads_total;  // JobStore::reads() at the scrape.
};

}  // namespace lvs::server

#endif  // LVS_SERVER_SERVER_METRICS_H_
