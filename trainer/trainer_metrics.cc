#include "trainer/trainer_metrics.h"

#include <sys/socket.h>

#include <charconv>
#include <cmath>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace lvs::trainer {
namespace {

constexpr size_t kBuckets = std::size(kStepSecondsBuckets);
constexpr const char* kOutcomes[] = {"completed", "failed", "cancelled"};

// Appends the HELP and TYPE lines of one metric family.
void Family(std::string* out, const char* name, const char* type,
            const char* help) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type,
                  "\n");
}

// Appends one sample `name{labels} value`.
void Sample(std::string* out, const std::string& name,
            const std::string& labels, double value) {
  absl::StrAppend(out, name, "{", labels, "} ", FormatMetricValue(value), "\n");
}

}  // namespace

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, r.ptr);
}

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '\\' || c == '"') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

TrainerMetrics::TrainerMetrics(std::string name, bool local)
    : label_(absl::StrCat("trainer=\"", EscapeLabelValue(name), "\"")),
      local_(local),
      step_buckets_(kBuckets + 1, 0) {
  for (const char* outcome : kOutcomes) jobs_[outcome] = 0;
}

void TrainerMetrics::OnConnected(bool connected) {
  absl::MutexLock lock(&mu_);
  connected_ = connected;
  if (connected) ++connects_;
}

void TrainerMetrics::OnJobStarted(const std::string& /*job*/, int64_t step,
                                  int64_t total_steps) {
  absl::MutexLock lock(&mu_);
  busy_ = true;
  step_ = step;
  total_steps_ = total_steps;
  task_loss_.clear();  // The new job may train other tasks.
}

void TrainerMetrics::OnStep(const std::string& /*job*/,
                            const StepStats& stats) {
  absl::MutexLock lock(&mu_);
  ++steps_;
  samples_ += stats.samples;
  step_ = stats.step + 1;
  loss_ = stats.loss;
  grad_norm_ = stats.grad_norm;
  learning_rate_ = stats.learning_rate;
  for (const auto& [task, loss] : stats.task_loss) task_loss_[task] = loss;
  size_t bucket = 0;
  while (bucket < kBuckets && stats.seconds > kStepSecondsBuckets[bucket]) {
    ++bucket;
  }
  ++step_buckets_[bucket];
  step_seconds_sum_ += stats.seconds;
}

void TrainerMetrics::OnCheckpoint(const std::string& /*job*/,
                                  int64_t /*step*/) {
  absl::MutexLock lock(&mu_);
  ++checkpoints_;
}

void TrainerMetrics::OnJobEnded(const std::string& /*job*/,
                                const std::string& outcome) {
  absl::MutexLock lock(&mu_);
  busy_ = false;
  ++jobs_[outcome];
}

bool TrainerMetrics::Healthy() const {
  absl::MutexLock lock(&mu_);
  return local_ || connected_;
}

std::string TrainerMetrics::Render() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  AppendProcessMetrics(&out);
  AppendStepMetrics(&out);
  return out;
}

void TrainerMetrics::AppendProcessMetrics(std::string* out) const {
  const std::string& t = label_;
  Family(out, "lvs_trainer_connected", "gauge",
         "Whether the trainer holds a stream to the server (0 in local mode).");
  Sample(out, "lvs_trainer_connected", t, connected_ ? 1 : 0);
  Family(out, "lvs_trainer_connects_total", "counter",
         "Streams opened to the server.");
  Sample(out, "lvs_trainer_connects_total", t, connects_);
  Family(out, "lvs_trainer_busy", "gauge",
         "Whether the trainer runs a training job.");
  Sample(out, "lvs_trainer_busy", t, busy_ ? 1 : 0);
  Family(out, "lvs_trainer_jobs_total", "counter",
         "Training jobs the trainer ended, by outcome.");
  for (const auto& [outcome, n] : jobs_) {
    Sample(out, "lvs_trainer_jobs_total",
           absl::StrCat(t, ",outcome=\"", EscapeLabelValue(outcome), "\""), n);
  }
  Family(out, "lvs_trainer_checkpoints_total", "counter",
         "Checkpoints the trainer wrote.");
  Sample(out, "lvs_trainer_checkpoints_total", t, checkpoints_);
}

void TrainerMetrics::AppendStepMetrics(std::string* out) const {
  const std::string& t = label_;
  Family(out, "lvs_trainer_steps_total", "counter",
         "Optimizer steps taken by the trainer.");
  Sample(out, "lvs_trainer_steps_total", t, steps_);
  Family(out, "lvs_trainer_samples_total", "counter",
         "Training items of the global batches of the steps taken.");
  Sample(out, "lvs_trainer_samples_total", t, samples_);
  Family(out, "lvs_trainer_step_seconds", "histogram",
         "Wall time of one optimizer step.");
  int64_t cumulative = 0;
  for (size_t i = 0; i <= kBuckets; ++i) {
    cumulative += step_buckets_[i];
    const std::string le = i < kBuckets
                               ? FormatMetricValue(kStepSecondsBuckets[i])
                               : std::string("+Inf");
    Sample(out, "lvs_trainer_step_seconds_bucket",
           absl::StrCat(t, ",le=\"", le, "\""), cumulative);
  }
  Sample(out, "lvs_trainer_step_seconds_sum", t, step_seconds_sum_);
  Sample(out, "lvs_trainer_step_seconds_count", t, cumulative);
  Family(out, "lvs_trainer_step", "gauge",
         "Steps done of the current (or last) job, resumed ones included.");
  Sample(out, "lvs_trainer_step", t, step_);
  Family(out, "lvs_trainer_total_steps", "gauge",
         "Steps of the current (or last) job when complete.");
  Sample(out, "lvs_trainer_total_steps", t, total_steps_);
  Family(out, "lvs_trainer_loss", "gauge",
         "Mean item loss of the last step over its active tasks.");
  Sample(out, "lvs_trainer_loss", t, loss_);
  Family(out, "lvs_trainer_task_loss", "gauge",
         "Mean item loss of the last step of each task of the job.");
  for (const auto& [task, loss] : task_loss_) {
    Sample(out, "lvs_trainer_task_loss",
           absl::StrCat(t, ",task=\"", EscapeLabelValue(task), "\""), loss);
  }
  Family(out, "lvs_trainer_grad_norm", "gauge",
         "Global gradient norm of the last step, before clipping.");
  Sample(out, "lvs_trainer_grad_norm", t, grad_norm_);
  Family(out, "lvs_trainer_learning_rate", "gauge",
         "Learning rate of the last step.");
  Sample(out, "lvs_trainer_learning_rate", t, learning_rate_);
}

TrainerMetricsServer::TrainerMetricsServer(const TrainerMetrics* metrics)
    : metrics_(metrics) {}

TrainerMetricsServer::~TrainerMetricsServer() { Stop(); }

absl::Status TrainerMetricsServer::Start(const std::string& listen) {
  rpc::HttpEndpoint::Handlers handlers;
  handlers.metrics = [this] { return metrics_->Render(); };
  handlers.healthy = [this] { return metrics_->Healthy(); };
  absl::StatusOr<std::unique_ptr<rpc::HttpEndpoint>> http =
      rpc::HttpEndpoint::Start(listen, std::move(handlers));
  if (!http.ok()) return http.status();
  http_ = std::move(*http);
  return absl::OkStatus();
}

void TrainerMetricsServer::Stop() { http_.reset(); }

}  // namespace lvs::trainer
