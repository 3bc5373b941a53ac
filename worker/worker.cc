#include "worker/worker.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "worker/log.h"

namespace lvs::worker {

namespace pb = ::lumina::video::v1;

// One open stream to the server. The reader thread owns Read(); writes from
// any thread are serialised by `mu_`.
class Session {
 public:
  Session() = default;

  // Opens the stream with `stub`, sending the worker token.
  void Open(pb::WorkerService::Stub* stub, const std::string& token) {
    client::PrepareContext(&context_, absl::ZeroDuration(),
                           "x-lvs-worker-token", token);
    stream_ = stub->Connect(&context_);
  }

  // Sends `message`; false once the stream is closed or broken.
  bool Write(const pb::WorkerMessage& message) {
    absl::MutexLock lock(&mu_);
    if (closed_ || half_closed_) return false;
    if (!stream_->Write(message)) {
      closed_ = true;
      return false;
    }
    return true;
  }

  // Half-closes the stream (no more writes; the server then ends it).
  void WritesDone() {
    absl::MutexLock lock(&mu_);
    if (closed_ || half_closed_) return;
    half_closed_ = true;
    stream_->WritesDone();
  }

  // Reads the next message (reader thread only).
  bool Read(pb::ServerMessage* message) { return stream_->Read(message); }

  // Marks the stream closed (no more writes) and wakes the heartbeat.
  void MarkClosed() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }

  // Aborts the call from any thread.
  void Cancel() { context_.TryCancel(); }

  // Waits until closed or `timeout` passes; returns whether it is closed.
  bool WaitClosed(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto closed = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return closed_; };
    mu_.AwaitWithTimeout(absl::Condition(&closed), timeout);
    return closed_;
  }

  // Ends the call and returns its status (after Read returned false).
  grpc::Status Finish() { return stream_->Finish(); }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<pb::WorkerMessage, pb::ServerMessage>>
      stream_;
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool half_closed_ ABSL_GUARDED_BY(mu_) = false;
};

namespace {

// How long a drained worker waits for the server to end the stream.
constexpr absl::Duration kCloseGrace = absl::Seconds(5);

// Converts a protobuf Duration, with `fallback` when unset.
absl::Duration FromProto(const google::protobuf::Duration& d,
                         absl::Duration fallback) {
  const absl::Duration out =
      absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
  return out > absl::ZeroDuration() ? out : fallback;
}

}  // namespace

Worker::Worker(WorkerOptions options, std::unique_ptr<VideoModel> model)
    : options_(std::move(options)),
      model_(std::move(model)),
      runner_(model_.get(), options_.encoder) {
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
  absl::MutexLock lock(&mu_);
  WorkerCounters c = counters_;
  c.busy = !current_lease_.empty();
  return c;
}

void Worker::Drain() {
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    if (draining_) return;
    draining_ = true;
    if (!current_lease_.empty() || !tasks_.empty()) return;  // AfterTask.
    session = session_;
  }
  LogLine("drain", {{"worker", options_.name}, {"state", "idle"}});
  if (session != nullptr) session->WritesDone();
}

absl::Status Worker::Run() {
  auto channel = client::MakeChannel(options_.channel);
  if (!channel.ok()) return channel.status();
  stub_ = pb::WorkerService::NewStub(*channel);
  absl::Duration backoff = options_.backoff_initial;
  std::mt19937_64 rng(std::random_device{}());
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (draining_) break;
    }
    bool registered = false;
    const absl::Status status = ServeSession(&registered);
    if (absl::IsAlreadyExists(status)) return status;
    {
      absl::MutexLock lock(&mu_);
      counters_.connected = false;
      if (draining_) break;
    }
    if (registered) backoff = options_.backoff_initial;
    // Full jitter: wait uniformly in [backoff/2, backoff].
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    const absl::Duration wait = backoff * jitter(rng);
    LogLine("disconnected", {{"worker", options_.name},
                             {"status", status.ToString()},
                             {"retry_in", absl::FormatDuration(wait)}});
    absl::MutexLock lock(&mu_);
    auto draining = [this]()
                        ABSL_SHARED_LOCKS_REQUIRED(mu_) { return draining_; };
    mu_.AwaitWithTimeout(absl::Condition(&draining), wait);
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
  LogLine("drained", {{"worker", options_.name}});
  return absl::OkStatus();
}

pb::WorkerMessage Worker::Registration() const {
  const ModelInfo info = model_->Info();
  pb::WorkerMessage hello;
  pb::RegisterWorker* reg = hello.mutable_register_();
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

absl::Status Worker::ServeSession(bool* registered) {
  auto session = std::make_shared<Session>();
  session->Open(stub_.get(), options_.token);
  pb::ServerMessage first;
  session->Write(Registration());  // A failed write shows in Read, Finish.
  const bool read = session->Read(&first);
  if (!read || !first.has_registered()) {
    session->MarkClosed();
    if (read) session->Cancel();  // Not the protocol: drop the call.
    const grpc::Status s = session->Finish();
    if (s.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
      // Another live worker holds the name: retrying cannot help.
      return absl::AlreadyExistsError(
          absl::StrCat("registration refused: ", client::DescribeStatus(s),
                       "; give this worker another --name"));
    }
    std::string hint;
    if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      hint = absl::StrCat("; ", options_.channel.target,
                          " does not serve WorkerService: --server must be "
                          "the server's worker port (its --worker-listen, "
                          "default 50052), not the client port");
    } else if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
      hint = absl::StrCat("; is lvs-server running with --worker-listen=",
                          options_.channel.target, "?");
    }
    return absl::UnavailableError(
        absl::StrCat("registration failed: ", client::DescribeStatus(s), hint));
  }
  *registered = true;
  const absl::Duration heartbeat =
      FromProto(first.registered().heartbeat_interval(), absl::Seconds(2));
  LogLine("registered", {{"worker", options_.name},
                         {"heartbeat", absl::FormatDuration(heartbeat)}});
  bool draining = false;
  {
    absl::MutexLock lock(&mu_);
    session_ = session;
    ++counters_.connects;
    counters_.connected = true;
    draining = draining_;
  }
  std::thread heartbeats(
      [this, session, heartbeat] { HeartbeatLoop(session, heartbeat); });
  if (draining) {
    // Drained while registering: close at once.
    session->WritesDone();
  } else {
    pb::WorkerMessage lease;
    lease.mutable_lease_request();
    session->Write(lease);
  }
  pb::ServerMessage message;
  while (session->Read(&message)) Dispatch(session, message);
  session->MarkClosed();
  ReleaseSession();
  heartbeats.join();
  const grpc::Status s = session->Finish();
  if (s.ok()) return absl::OkStatus();
  return absl::UnavailableError(client::DescribeStatus(s));
}

void Worker::ReleaseSession() {
  // The stream is gone, and with it every lease it carried.
  absl::MutexLock lock(&mu_);
  session_.reset();
  if (current_cancel_ != nullptr) current_cancel_->Cancel();
  for (const Task& task : tasks_) {
    if (!task.is_reload) current_lease_.clear();  // Never started.
  }
  tasks_.clear();
  auto idle_now = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return current_lease_.empty();
  };
  mu_.Await(absl::Condition(&idle_now));
}

void Worker::Dispatch(const std::shared_ptr<Session>& session,
                      const pb::ServerMessage& message) {
  if (message.has_drain()) {
    Drain();
    return;
  }
  absl::MutexLock lock(&mu_);
  switch (message.message_case()) {
    case pb::ServerMessage::kAssignment: {
      if (draining_ || !current_lease_.empty()) {
        // The server re-queues it when the stream ends.
        LogLine("refused", {{"job", message.assignment().job()}});
        session->Cancel();
        return;
      }
      current_lease_ = message.assignment().lease_id();
      current_cancel_ = std::make_shared<CancelToken>();
      tasks_.push_back(Task{session, message.assignment(), {}, false});
      return;
    }
    case pb::ServerMessage::kCancel:
      if (message.cancel().lease_id() == current_lease_ &&
          current_cancel_ != nullptr) {
        LogLine("cancel", {{"lease", current_lease_},
                           {"reason", message.cancel().reason()}});
        current_cancel_->Cancel();
      }
      return;
    case pb::ServerMessage::kReload:
      tasks_.push_back(Task{session, {}, message.reload(), true});
      return;
    default:
      return;
  }
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
    }
    if (task.is_reload) {
      RunReload(task);
    } else {
      RunJob(task);
    }
  }
}

void Worker::RunJob(const Task& task) {
  const pb::JobAssignment& a = task.assignment;
  std::shared_ptr<CancelToken> cancel;
  {
    absl::MutexLock lock(&mu_);
    cancel = current_cancel_;
  }
  LogLine("job_start", {{"job", a.job()},
                        {"lease", a.lease_id()},
                        {"attempt", absl::StrCat(a.attempt())},
                        {"worker", options_.name}});
  const absl::Time start = absl::Now();
  const pb::WorkerMessage final_message =
      runner_.Run(a, *cancel, [this, &task](const pb::WorkerMessage& m) {
        if (m.job_event().event().has_step()) {
          // One Step event per finished denoising step (grid interval).
          absl::MutexLock lock(&mu_);
          ++counters_.denoise_steps;
        }
        return task.session->Write(m);
      });
  std::string outcome = "succeeded";
  if (final_message.has_cancel_ack()) {
    outcome = "cancelled";
  } else if (final_message.job_result().has_error()) {
    outcome = "failed";
  }
  // Logged and counted before the server hears of it, so whoever sees the
  // job finished also sees the worker's record of it.
  LogLine(
      "job_end",
      {{"job", a.job()},
       {"outcome", outcome},
       {"seconds", absl::StrCat(absl::ToDoubleSeconds(absl::Now() - start))},
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
  task.session->Write(final_message);
  {
    absl::MutexLock lock(&mu_);
    current_lease_.clear();
    current_cancel_.reset();
  }
  AfterTask(task.session);
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
  LogLine("reload", {{"checkpoint", task.reload.checkpoint()},
                     {"vae", task.reload.vae()},
                     {"version", r->model_version()},
                     {"status", version.status().ToString()}});
  task.session->Write(reply);
}

void Worker::AfterTask(const std::shared_ptr<Session>& session) {
  bool draining = false;
  {
    absl::MutexLock lock(&mu_);
    draining = draining_;
  }
  if (draining) {
    session->WritesDone();
    return;
  }
  pb::WorkerMessage lease;
  lease.mutable_lease_request();
  session->Write(lease);
}

void Worker::HeartbeatLoop(std::shared_ptr<Session> session,
                           absl::Duration every) {
  while (!session->WaitClosed(every)) {
    pb::WorkerMessage beat;
    {
      absl::MutexLock lock(&mu_);
      beat.mutable_heartbeat()->set_lease_id(current_lease_);
      beat.mutable_heartbeat()->set_gpu_memory_used_bytes(
          static_cast<int64_t>(counters_.device_memory_bytes));
    }
    if (!session->Write(beat)) break;
  }
  // Half-closed by a drain: give the server a moment to end the call.
  if (!session->WaitClosed(kCloseGrace)) session->Cancel();
}

}  // namespace lvs::worker
