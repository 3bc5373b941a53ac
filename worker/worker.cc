#include "worker/worker.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace lvs::worker {

namespace pb = ::lumina::video::v1;

namespace {

rpc::WorkerLinkOptions LinkOptions(const WorkerOptions& o) {
  rpc::WorkerLinkOptions l;
  l.channel = o.channel;
  l.token = o.token;
  l.backoff_initial = o.backoff_initial;
  l.backoff_max = o.backoff_max;
  return l;
}

}  // namespace

Worker::Worker(WorkerOptions options, std::unique_ptr<VideoModel> model)
    : options_(std::move(options)),
      model_(std::move(model)),
      runner_(model_.get(), options_.encoder),
      link_(LinkOptions(options_), this) {
  counters_.devices =
      1 + static_cast<int>(
              std::count(options_.device.begin(), options_.device.end(), ','));
  model_thread_ = std::thread([this] { ModelLoop(); });
}

Worker::~Worker() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (current_cancel_ != nullptr) current_cancel_->Cancel();
  }
  model_thread_.join();
}

WorkerCounters Worker::Snapshot() const {
  const rpc::LinkState link = link_.State();
  absl::MutexLock lock(&mu_);
  WorkerCounters c = counters_;
  c.connected = link.connected;
  c.connects = link.connects;
  c.busy = link.busy;
  return c;
}

void Worker::Drain() { link_.Drain(); }

absl::Status Worker::Run() { return link_.Run(); }

pb::RegisterWorker Worker::Registration() {
  const ModelInfo info = model_->Info();
  pb::RegisterWorker hello;
  pb::RegisterWorker* reg = &hello;
  reg->set_name(options_.name);
  reg->set_kind(pb::WORKER_KIND_GENERATOR);
  reg->set_version("lvs-worker 0.1.0");
  pb::WorkerCapabilities* caps = reg->mutable_capabilities();
  for (const std::string& id : info.model_ids) caps->add_models(id);
  caps->set_device(options_.device);
  caps->set_gpu_name(info.device_name);
  caps->set_gpu_memory_total_bytes(
      static_cast<int64_t>(info.device_memory_bytes));
  caps->set_max_width(info.max_width);
  caps->set_max_height(info.max_height);
  caps->set_max_frames(info.max_frames);
  caps->set_model_version(model_->Version());
  if (!info.model_ids.empty()) {
    pb::ModelLimits* l = caps->add_model_limits();
    l->set_id(info.model_ids[0]);
    for (size_t i = 1; i < info.model_ids.size(); ++i) {
      l->add_aliases(info.model_ids[i]);
    }
    l->set_version(model_->Version());
    l->set_size_multiple(info.size_multiple);
    l->set_max_width(info.max_width);
    l->set_max_height(info.max_height);
    l->set_max_pixels(info.max_pixels);
    l->set_frames_per_latent(info.frames_per_latent);
    l->set_min_latent_frames(info.min_latent_frames);
    l->set_latent_frames_multiple(info.latent_frames_multiple);
    l->set_max_frames(info.max_frames);
    l->set_max_fps(info.max_fps);
    l->set_max_steps(info.max_steps);
    for (const SampleConfigRule& rule : info.sample_configs) {
      pb::SampleConfigLimits* c = l->add_sample_configs();
      c->set_name(rule.name);
      c->set_latent_frames_multiple(rule.latent_frames_multiple);
      c->set_max_pixels(rule.max_pixels);
    }
    l->set_default_width(info.default_width);
    l->set_default_height(info.default_height);
    l->set_default_frames(info.default_frames);
    l->set_default_fps(info.default_fps);
    l->set_default_steps(info.default_steps);
    l->set_default_sample_config(info.default_sample_config);
  }
  return hello;
}

void Worker::StartLease(const pb::ServerMessage& assignment,
                        std::shared_ptr<rpc::Lease> lease) {
  auto cancel = std::make_shared<CancelToken>();
  lease->OnCancel([cancel] { cancel->Cancel(); });
  absl::MutexLock lock(&mu_);
  tasks_.push_back(Task{std::move(lease),
                        std::move(cancel),
                        assignment.assignment(),
                        {},
                        nullptr});
}

void Worker::OnReload(const pb::ReloadModelCommand& reload, rpc::Reply reply) {
  absl::MutexLock lock(&mu_);
  tasks_.push_back(Task{nullptr, nullptr, {}, reload, std::move(reply)});
}

void Worker::FillHeartbeat(pb::Heartbeat* beat) {
  absl::MutexLock lock(&mu_);
  beat->set_gpu_memory_used_bytes(
      static_cast<int64_t>(counters_.device_memory_bytes));
}

void Worker::ModelLoop() {
  while (true) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || !tasks_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
      if (task.lease != nullptr) current_cancel_ = task.cancel;
    }
    if (task.lease != nullptr) {
      RunJob(task);
    } else {
      RunReload(task);
    }
  }
}

void Worker::RunJob(const Task& task) {
  const pb::JobAssignment& a = task.assignment;
  if (!task.lease->stream_open()) {
    // The stream ended before the job started: the server re-queued it.
    link_.Finish(task.lease);
    return;
  }
  common::LogEvent(
      "job_start",
      {{"job_id", a.job()}, {"lease", a.lease_id()}, {"attempt", a.attempt()}});
  const absl::Time start = absl::Now();
  const pb::WorkerMessage final_message =
      runner_.Run(a, *task.cancel, [this, &task](const pb::WorkerMessage& m) {
        if (m.job_event().event().has_step()) {
          // One Step event per finished denoising step (grid interval).
          absl::MutexLock lock(&mu_);
          ++counters_.denoise_steps;
        }
        return task.lease->Send(m);
      });
  std::string outcome = "succeeded";
  if (final_message.has_cancel_ack()) {
    outcome = "cancelled";
  } else if (final_message.job_result().has_error()) {
    outcome = "failed";
  }
  // Logged and counted before the server hears of it, so whoever sees the
  // job finished also sees the worker's record of it.
  common::LogEvent("job_end",
                   {{"job_id", a.job()},
                    {"outcome", outcome},
                    {"seconds", absl::ToDoubleSeconds(absl::Now() - start)},
                    {"error", final_message.job_result().error().message()}});
  {
    absl::MutexLock lock(&mu_);
    counters_.device_memory_bytes = model_->DeviceMemoryInUse();
    if (outcome == "succeeded") ++counters_.jobs_succeeded;
    const pb::Timings& timings =
        final_message.job_result().completed().timings();
    counters_.dit_forwards_computed += timings.dit_forwards_computed();
    counters_.dit_forwards_cached += timings.dit_forwards_cached();
    if (outcome == "failed") ++counters_.jobs_failed;
    if (outcome == "cancelled") ++counters_.jobs_cancelled;
  }
  task.lease->Send(final_message);
  {
    absl::MutexLock lock(&mu_);
    current_cancel_.reset();
  }
  link_.Finish(task.lease);
}

void Worker::RunReload(const Task& task) {
  pb::WorkerMessage reply;
  pb::ReloadResult* r = reply.mutable_reload_result();
  r->set_reload_id(task.reload.reload_id());
  const absl::StatusOr<std::string> version = model_->Reload(
      task.reload.checkpoint(), task.reload.use_ema(), task.reload.vae());
  if (version.ok()) {
    r->set_model_version(*version);
  } else {
    r->set_model_version(model_->Version());
    r->mutable_status()->set_code(static_cast<int>(version.status().code()));
    r->mutable_status()->set_message(std::string(version.status().message()));
  }
  common::LogEvent("reload", {{"checkpoint", task.reload.checkpoint()},
                              {"vae", task.reload.vae()},
                              {"version", r->model_version()},
                              {"status", version.status().ToString()}});
  task.reply(reply);
}

}  // namespace lvs::worker
