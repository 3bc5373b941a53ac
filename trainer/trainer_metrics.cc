#include "trainer/trainer_metrics.h"

#include <iterator>
#include <utility>
#include <vector>

namespace lvs::trainer {
namespace {

constexpr const char* kOutcomes[] = {"completed", "failed", "cancelled"};

}  // namespace

TrainerMetrics::TrainerMetrics(std::string name, bool local)
    : name_(std::move(name)), local_(local) {
  rpc::MetricsRegistry& r = registry_;
  const std::vector<std::string> t = {"trainer"};
  connected_gauge_ = r.Gauge(
      "lvs_trainer_connected",
      "Whether the trainer holds a stream to the server (0 in local mode).", t);
  connects_ = r.Counter("lvs_trainer_connects_total",
                        "Streams opened to the server.", t);
  busy_ = r.Gauge("lvs_trainer_busy",
                  "Whether the trainer runs a training job.", t);
  jobs_ = r.Counter("lvs_trainer_jobs_total",
                    "Training jobs the trainer ended, by outcome.",
                    {"trainer", "outcome"});
  checkpoints_ = r.Counter("lvs_trainer_checkpoints_total",
                           "Checkpoints the trainer wrote.", t);
  steps_ = r.Counter("lvs_trainer_steps_total",
                     "Optimizer steps taken by the trainer.", t);
  samples_ =
      r.Counter("lvs_trainer_samples_total",
                "Training items of the global batches of the steps taken.", t);
  step_seconds_ = r.Histogram(
      "lvs_trainer_step_seconds", "Wall time of one optimizer step.",
      std::vector<double>(std::begin(kStepSecondsBuckets),
                          std::end(kStepSecondsBuckets)),
      t);
  step_ = r.Gauge(
      "lvs_trainer_step",
      "Steps done of the current (or last) job, resumed ones included.", t);
  total_steps_ =
      r.Gauge("lvs_trainer_total_steps",
              "Steps of the current (or last) job when complete.", t);
  loss_ = r.Gauge("lvs_trainer_loss",
                  "Mean item loss of the last step over its active tasks.", t);
  task_loss_ =
      r.Gauge("lvs_trainer_task_loss",
              "Mean item loss of the last step of each task of the job.",
              {"trainer", "task"});
  grad_norm_ =
      r.Gauge("lvs_trainer_grad_norm",
              "Global gradient norm of the last step, before clipping.", t);
  learning_rate_ = r.Gauge("lvs_trainer_learning_rate",
                           "Learning rate of the last step.", t);
  r.AddBuildInfo("lvs_trainer_build_info", {{"trainer", name_}});
  // Every series exists from the start (0 until something happens).
  for (rpc::MetricFamily* f :
       {connected_gauge_, connects_, busy_, checkpoints_, steps_, samples_,
        step_, total_steps_, loss_, grad_norm_, learning_rate_}) {
    f->Add({name_}, 0);
  }
  for (const char* outcome : kOutcomes) jobs_->Add({name_, outcome}, 0);
  step_seconds_->Add({name_}, 0);  // The empty histogram.
}

void TrainerMetrics::OnConnected(bool connected) {
  {
    absl::MutexLock lock(&mu_);
    connected_ = connected;
  }
  connected_gauge_->Set({name_}, connected ? 1 : 0);
  if (connected) connects_->Add({name_}, 1);
}

void TrainerMetrics::OnJobStarted(const std::string& /*job*/, int64_t step,
                                  int64_t total_steps) {
  busy_->Set({name_}, 1);
  step_->Set({name_}, static_cast<double>(step));
  total_steps_->Set({name_}, static_cast<double>(total_steps));
  task_loss_->Clear();  // The new job may train other tasks.
}

void TrainerMetrics::OnStep(const std::string& /*job*/,
                            const StepStats& stats) {
  steps_->Add({name_}, 1);
  samples_->Add({name_}, static_cast<double>(stats.samples));
  step_->Set({name_}, static_cast<double>(stats.step + 1));
  loss_->Set({name_}, stats.loss);
  grad_norm_->Set({name_}, stats.grad_norm);
  learning_rate_->Set({name_}, stats.learning_rate);
  for (const auto& [task, loss] : stats.task_loss) {
    task_loss_->Set({name_, task}, loss);
  }
  step_seconds_->Observe({name_}, stats.seconds);
}

void TrainerMetrics::OnCheckpoint(const std::string& /*job*/,
                                  int64_t /*step*/) {
  checkpoints_->Add({name_}, 1);
}

void TrainerMetrics::OnJobEnded(const std::string& /*job*/,
                                const std::string& outcome) {
  busy_->Set({name_}, 0);
  jobs_->Add({name_, outcome}, 1);
}

bool TrainerMetrics::Healthy() const {
  absl::MutexLock lock(&mu_);
  return local_ || connected_;
}

std::string TrainerMetrics::Render() const { return registry_.Render(); }

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
