// The trainer's metrics: `TrainerMetrics`, a `TrainerObserver` that keeps
// counters and gauges of one lvs-trainer process and renders them in the
// Prometheus text format 0.0.4, and `TrainerMetricsServer`, which serves
// `/metrics` and `/healthz` over HTTP (rpc::HttpEndpoint) for
// `--metrics-listen`.
//
// Every series carries the label `trainer` (the process's --name). Job ids
// are not labels (unbounded cardinality); the gauges describe the job that
// runs now or ran last.
//
// Thread-safety: TrainerMetrics is thread-safe (one mutex; the observer
// calls come from the session and job threads, Render from the HTTP
// threads). TrainerMetricsServer: Start/Stop from one thread.
#ifndef LVS_TRAINER_TRAINER_METRICS_H_
#define LVS_TRAINER_TRAINER_METRICS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "rpc/http_endpoint.h"
#include "rpc/metrics.h"
#include "trainer/trainer_service.h"

namespace lvs::trainer {

// Upper bounds (seconds) of the `lvs_trainer_step_seconds` histogram buckets
// below +Inf: from tiny CPU models (tens of ms) to large GPU steps with
// gradient accumulation (minutes).
inline constexpr double kStepSecondsBuckets[] = {
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 120, 300, 600};

// Keeps the metrics of one trainer process; see the file comment.
class TrainerMetrics : public TrainerObserver {
 public:
  // `name` becomes the `trainer` label. `local` marks local mode (no
  // server): /healthz then answers 200 without a connection.
  explicit TrainerMetrics(std::string name, bool local = false);

  void OnConnected(bool connected) override;
  void OnJobStarted(const std::string& job, int64_t step,
                    int64_t total_steps) override;
  void OnStep(const std::string& job, const StepStats& stats) override;
  void OnCheckpoint(const std::string& job, int64_t step) override;
  void OnJobEnded(const std::string& job, const std::string& outcome) override;

  // True while connected to the server, or always in local mode.
  bool Healthy() const;

  // Returns the exposition text of every metric (final newline included).
  std::string Render() const;

 private:
  const std::string name_;  // The `trainer` label.
  const bool local_;
  // Render() is const for the endpoint; the registry is thread-safe.
  mutable rpc::MetricsRegistry registry_;
  rpc::MetricFamily* connected_gauge_;
  rpc::MetricFamily* connects_;
  rpc::MetricFamily* busy_;
  rpc::MetricFamily* jobs_;
  rpc::MetricFamily* checkpoints_;
  rpc::MetricFamily* steps_;
  rpc::MetricFamily* samples_;
  rpc::MetricFamily* step_seconds_;
  rpc::MetricFamily* step_;
  rpc::MetricFamily* total_steps_;
  rpc::MetricFamily* loss_;
  rpc::MetricFamily* task_loss_;
  rpc::MetricFamily* grad_norm_;
  rpc::MetricFamily* learning_rate_;
  mutable absl::Mutex mu_;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
};

// Serves `/metrics` (TrainerMetrics::Render) and `/healthz` (200 when
// Healthy(), 503 otherwise) for one trainer.
class TrainerMetricsServer {
 public:
  // Serves `metrics` (not owned; outlives the server).
  explicit TrainerMetricsServer(const TrainerMetrics* metrics);
  ~TrainerMetricsServer();

  // Listens on `listen` ("host:port"); INVALID_ARGUMENT naming
  // --metrics-listen when it is malformed, UNAVAILABLE when bind fails.
  absl::Status Start(const std::string& listen);

  // Stops listening and joins the server thread; idempotent.
  void Stop();

 private:
  const TrainerMetrics* metrics_;
  std::unique_ptr<rpc::HttpEndpoint> http_;
};

}  // namespace lvs::trainer

#endif  // LVS_TRAINER_TRAINER_METRICS_H_
