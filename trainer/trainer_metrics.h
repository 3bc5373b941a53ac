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
#include "trainer/trainer_service.h"

namespace lvs::trainer {

// Upper bounds (seconds) of the `lvs_trainer_step_seconds` histogram buckets
// below +Inf: from tiny CPU models (tens of ms) to large GPU steps with
// gradient accumulation (minutes).
inline constexpr double kStepSecondsBuckets[] = {
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 120, 300, 600};

// Formats a sample value as the text format expects ("NaN", "+Inf",
// "-Inf", otherwise the shortest text that reads back as the same double).
std::string FormatMetricValue(double value);

// Escapes a label value (backslash, double quote, newline).
std::string EscapeLabelValue(const std::string& value);

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
  // The connection, job and checkpoint metrics.
  void AppendProcessMetrics(std::string* out) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The step, loss and optimizer metrics.
  void AppendStepMetrics(std::string* out) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string label_;  // `trainer="<escaped name>"`.
  const bool local_;
  mutable absl::Mutex mu_;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  int64_t connects_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t steps_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t samples_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t checkpoints_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t step_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t total_steps_ ABSL_GUARDED_BY(mu_) = 0;
  double loss_ ABSL_GUARDED_BY(mu_) = 0;
  double grad_norm_ ABSL_GUARDED_BY(mu_) = 0;
  double learning_rate_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, double> task_loss_ ABSL_GUARDED_BY(mu_);
  // Per-bucket (non-cumulative) counts; the last one is +Inf.
  std::vector<int64_t> step_buckets_ ABSL_GUARDED_BY(mu_);
  double step_seconds_sum_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int64_t> jobs_ ABSL_GUARDED_BY(mu_);  // By outcome.
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
