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
  explicit ServerMetrics(MetricsRegistry* registry);

  MetricsRegistry* registry;
  MetricFamily* jobs_total;                     // {state}: state changes.
  MetricFamily* queue_depth;                    // {priority}
  MetricFamily* workers;                        // {state}
  MetricFamily* worker_gpu_memory_bytes;        // {worker}
  MetricFamily* queue_wait_seconds;             // Histogram.
  MetricFamily* job_duration_seconds;           // Histogram.
  MetricFamily* denoise_step_seconds;           // Histogram.
  MetricFamily* time_to_first_chunk_seconds;    // Histogram.
  MetricFamily* grpc_requests_total;            // {method, code}
  MetricFamily* grpc_request_duration_seconds;  // {method} histogram.
  MetricFamily* training_jobs_total;            // {state}
  MetricFamily* admission_rejections_total;     // {reason}
};

}  // namespace lvs::server

#endif  // LVS_SERVER_SERVER_METRICS_H_
