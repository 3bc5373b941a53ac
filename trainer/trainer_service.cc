// lvs-trainer's server connection and job runner.
#include "trainer/trainer_service.h"

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/proto_time.h"
#include "grpcpp/grpcpp.h"
#include "trainer/checkpoint.h"
#include "trainer/trainer.h"
#include "trainer/trainer_group.h"

namespace lvs::trainer {
namespace v1 = ::lumina::video::v1;

// One open stream and the job running on it.
class TrainerSession {
 public:
  grpc::ClientContext context;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::WorkerMessage, v1::ServerMessage>>
      stream;
  std::atomic<bool> cancel{false};
  std::atomic<bool> busy{false};
  absl::Notification ended;

  // Writes `m` unless the stream is closed; false when it could not.
  bool Send(const v1::WorkerMessage& m) {
    absl::MutexLock lock(&mu_);
    return !closed_ && stream->Write(m);
  }
  // Half-closes the stream (no more writes).
  void CloseWrites() {
    absl::MutexLock lock(&mu_);
    if (!closed_) stream->WritesDone();
    closed_ = true;
  }
  void set_lease(const std::string& lease) {
    absl::MutexLock lock(&mu_);
    lease_ = lease;
  }
  std::string lease() {
    absl::MutexLock lock(&mu_);
    return lease_;
  }

 private:
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::string lease_ ABSL_GUARDED_BY(mu_);
};

namespace {

void Log(const std::string& line) {
  const std::string text =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                    absl::UTCTimeZone()),
                   " ", line, "\n");
  std::fwrite(text.data(), 1, text.size(), stderr);
}

v1::WorkerMessage ReportCheckpoint(const std::string& lease, int64_t step,
                                   const std::string& path) {
  v1::WorkerMessage m;
  v1::TrainingCheckpoint* c =
      m.mutable_training_report()->mutable_event()->mutable_checkpoint();
  m.mutable_training_report()->set_lease_id(lease);
  c->set_step(step);
  c->set_path(path);
  common::ToProto(absl::Now(), c->mutable_time());
  return m;
}

v1::WorkerMessage ReportStep(const std::string& lease, const StepStats& s,
                             int64_t total) {
  v1::WorkerMessage m;
  m.mutable_training_report()->set_lease_id(lease);
  v1::TrainingStep* st =
      m.mutable_training_report()->mutable_event()->mutable_step();
  st->set_step(s.step + 1);
  st->set_total_steps(total);
  st->set_loss(static_cast<float>(s.loss));
  for (const auto& [task, loss] : s.task_loss) {
    (*st->mutable_task_loss())[task] = static_cast<float>(loss);
  }
  st->set_grad_norm(static_cast<float>(s.grad_norm));
  st->set_learning_rate(s.learning_rate);
  st->set_samples_per_second(
      s.seconds > 0 ? static_cast<float>(s.samples / s.seconds) : 0.f);
  return m;
}

v1::WorkerMessage Failure(const std::string& lease, const absl::Status& s) {
  v1::WorkerMessage m;
  v1::TrainingResult* r = m.mutable_training_result();
  r->set_lease_id(lease);
  r->mutable_error()->set_code(static_cast<int>(s.code()));
  r->mutable_error()->set_message(std::string(s.message()));
  r->set_permanent(s.code() == absl::StatusCode::kInvalidArgument ||
                   s.code() == absl::StatusCode::kFailedPrecondition);
  return m;
}

// Writes the checkpoint of the trainer's current step unless an earlier
// attempt wrote it already (the trajectory is deterministic, so it holds
// the same state).
absl::StatusOr<std::string> Checkpoint(const TrainerGroup& tr,
                                       const std::string& root) {
  const std::string dir = CheckpointDir(root, tr.next_step());
  if (std::filesystem::exists(dir)) return dir;
  if (absl::Status s = tr.SaveCheckpoint(dir); !s.ok()) return s;
  return dir;
}

}  // namespace

absl::StatusOr<TrainSpec> TrainSpecFromProto(const v1::TrainingJobSpec& p) {
  TrainSpec s;
  s.model = p.model();
  s.init_from = p.init_from();
  s.learning_rate = p.learning_rate();
  s.max_steps = p.max_steps();
  s.checkpoint_interval = p.checkpoint_interval();
  s.seed = p.seed();
  if (p.grad_clip() > 0) s.grad_clip = p.grad_clip();
  if (p.ema_decay() > 0) s.ema_decay = p.ema_decay();
  if (p.ema_interval() > 0) s.ema_interval = p.ema_interval();
  if (p.caption_dropout() > 0) s.caption_dropout = p.caption_dropout();
  s.vd_weight = p.vd_weight();
  s.data_parallel = p.data_parallel() > 0 ? p.data_parallel() : 1;
  s.precision = p.precision() == v1::PRECISION_BF16 ? TrainPrecision::kBFloat16
                                                    : TrainPrecision::kFloat32;
  s.text_encoder = p.text_encoder();
  s.vae = p.vae();
  for (int i = 0; i < p.tasks_size(); ++i) {
    const v1::TrainingTask& t = p.tasks(i);
    TaskSpec task;
    task.name = t.name();
    task.media_type = t.media_type() == v1::MEDIA_TYPE_IMAGE
                          ? MediaType::kImage
                          : MediaType::kVideo;
    task.records.assign(t.records().begin(), t.records().end());
    task.global_batch_size = t.global_batch_size();
    task.micro_batch_size = t.micro_batch_size();
    task.max_frames = t.max_frames();
    if (!t.snr_type().empty()) task.snr_type = t.snr_type();
    if (t.time_shift() > 0) task.time_shift = t.time_shift();
    task.task_ratio = t.task_ratio();
    if (absl::Status st =
            ParsePatch(t.patch(), &task.patch_size, &task.f_patch_size);
        !st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tasks[", i, "].patch: ", st.message()));
    }
    s.tasks.push_back(std::move(task));
  }
  if (absl::Status st = ValidateTrainSpec(s); !st.ok()) return st;
  return s;
}

TrainerService::TrainerService(TrainerServiceOptions options)
    : options_(std::move(options)) {}

TrainerService::~TrainerService() = default;

void TrainerService::Drain() {
  std::shared_ptr<TrainerSession> session;
  bool busy = false;
  {
    // Under mu_ with the job thread's end of job: either this sees the job
    // done (and closes the stream) or the job thread sees draining_ (and
    // closes it instead of asking for another lease).
    absl::MutexLock lock(&mu_);
    draining_ = true;
    session = session_;
    busy = session && session->busy;
  }
  if (session && !busy) session->context.TryCancel();
}

void TrainerService::RunJob(std::shared_ptr<TrainerSession> session,
                            v1::TrainingAssignment a) {
  const std::string lease = a.lease_id();
  const std::string id = a.job().substr(a.job().find('/') + 1);
  const std::string root = options_.work_dir + "/" + id;
  Log(absl::StrCat("training_started job=", a.job(), " attempt=", a.attempt(),
                   " resume_from=", a.resume_from().path()));
  TrainerObserver* obs = options_.observer;
  auto fail = [&](const absl::Status& s) {
    if (obs) obs->OnJobEnded(a.job(), "failed");
    Log(absl::StrCat("training_failed job=", a.job(), " error=\"", s.ToString(),
                     "\""));
    session->Send(Failure(lease, s));
  };
  absl::StatusOr<TrainSpec> spec = TrainSpecFromProto(a.spec());
  if (!spec.ok()) return fail(spec.status());
  // Unspecified precision: bf16 with fp32 masters on GPUs, fp32 on CPUs.
  if (a.spec().precision() == v1::PRECISION_UNSPECIFIED &&
      options_.device.rfind("cuda", 0) == 0) {
    spec->precision = TrainPrecision::kBFloat16;
  }
  absl::StatusOr<std::unique_ptr<TrainerGroup>> tr =
      TrainerGroup::Create(*spec, options_.device);
  if (!tr.ok()) return fail(tr.status());
  Log(absl::StrCat(
      "training_ranks job=", a.job(), " ranks=", (*tr)->size(),
      " device=", options_.device, " precision=",
      spec->precision == TrainPrecision::kBFloat16 ? "bf16" : "fp32"));
  if (a.has_resume_from() && !a.resume_from().path().empty()) {
    if (absl::Status s = (*tr)->Resume(a.resume_from().path()); !s.ok()) {
      return fail(s);
    }
  }
  if (obs) obs->OnJobStarted(a.job(), (*tr)->next_step(), spec->max_steps);
  while (!(*tr)->done()) {
    if (session->cancel) {
      v1::WorkerMessage ack;
      ack.mutable_cancel_ack()->set_lease_id(lease);
      session->Send(ack);
      Log(absl::StrCat("training_cancelled job=", a.job(),
                       " step=", (*tr)->next_step()));
      if (obs) obs->OnJobEnded(a.job(), "cancelled");
      return;
    }
    absl::StatusOr<StepStats> st = (*tr)->Step();
    if (!st.ok()) return fail(st.status());
    session->Send(ReportStep(lease, *st, spec->max_steps));
    if (obs) obs->OnStep(a.job(), *st);
    const int64_t done = (*tr)->next_step();
    if (spec->checkpoint_interval > 0 &&
        done % spec->checkpoint_interval == 0 && !(*tr)->done()) {
      absl::StatusOr<std::string> dir = Checkpoint(**tr, root);
      if (!dir.ok()) return fail(dir.status());
      if (obs) obs->OnCheckpoint(a.job(), done);
      session->Send(ReportCheckpoint(lease, done, *dir));
    }
  }
  absl::StatusOr<std::string> dir = Checkpoint(**tr, root);
  if (!dir.ok()) return fail(dir.status());
  if (obs) obs->OnCheckpoint(a.job(), (*tr)->next_step());
  // The final checkpoint is reported like the others (watchers see it, and
  // it becomes the job's last_checkpoint), then the result names it.
  session->Send(ReportCheckpoint(lease, (*tr)->next_step(), *dir));
  v1::WorkerMessage m;
  v1::TrainingResult* r = m.mutable_training_result();
  r->set_lease_id(lease);
  r->mutable_completed()->set_steps((*tr)->next_step());
  r->mutable_completed()->mutable_checkpoint()->set_step((*tr)->next_step());
  r->mutable_completed()->mutable_checkpoint()->set_path(*dir);
  common::ToProto(absl::Now(),
                  r->mutable_completed()->mutable_checkpoint()->mutable_time());
  session->Send(m);
  Log(absl::StrCat("training_completed job=", a.job(), " checkpoint=", *dir));
  if (obs) obs->OnJobEnded(a.job(), "completed");
}

absl::Status TrainerService::ServeSession(bool* registered) {
  auto session = std::make_shared<TrainerSession>();
  rpc::PrepareContext(&session->context, absl::ZeroDuration(),
                      "x-lvs-worker-token", options_.token);
  session->stream = stub_->Connect(&session->context);
  {
    absl::MutexLock lock(&mu_);
    session_ = session;
  }
  v1::WorkerMessage reg;
  reg.mutable_register_()->set_name(options_.name);
  reg.mutable_register_()->set_kind(v1::WORKER_KIND_TRAINER);
  reg.mutable_register_()->mutable_capabilities()->set_device(options_.device);
  reg.mutable_register_()->set_version("lvs-trainer 0.1");
  v1::ServerMessage in;
  absl::Duration heartbeat = absl::Seconds(5);
  if (session->Send(reg) && session->stream->Read(&in) && in.has_registered()) {
    *registered = true;
    const auto& d = in.registered().heartbeat_interval();
    if (d.seconds() > 0 || d.nanos() > 0) {
      heartbeat = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
    }
    Log(absl::StrCat("registered name=", options_.name));
    if (options_.observer) options_.observer->OnConnected(true);
    v1::WorkerMessage lease_request;
    lease_request.mutable_lease_request();
    session->Send(lease_request);
  }
  std::thread beat([session, heartbeat] {
    while (!session->ended.WaitForNotificationWithTimeout(heartbeat)) {
      v1::WorkerMessage m;
      m.mutable_heartbeat()->set_lease_id(session->lease());
      session->Send(m);
    }
  });
  std::thread job;
  while (*registered && session->stream->Read(&in)) {
    if (in.has_training_assignment()) {
      {
        // One lease at a time, and none once draining.
        absl::MutexLock lock(&mu_);
        if (session->busy || draining_) continue;
      }
      if (job.joinable()) job.join();
      session->busy = true;
      session->cancel = false;
      session->set_lease(in.training_assignment().lease_id());
      job = std::thread([this, session, a = in.training_assignment()] {
        RunJob(session, a);
        session->set_lease("");
        bool draining;
        {
          absl::MutexLock lock(&mu_);
          draining = draining_;
          session->busy = false;
        }
        if (draining) {
          session->context.TryCancel();
        } else {
          v1::WorkerMessage next;
          next.mutable_lease_request();
          session->Send(next);
        }
      });
    } else if (in.has_cancel()) {
      if (in.cancel().lease_id() == session->lease()) session->cancel = true;
    } else if (in.has_drain()) {
      Drain();
    } else if (in.has_reload()) {
      v1::WorkerMessage m;
      m.mutable_reload_result()->set_reload_id(in.reload().reload_id());
      m.mutable_reload_result()->mutable_status()->set_code(
          static_cast<int>(absl::StatusCode::kFailedPrecondition));
      m.mutable_reload_result()->mutable_status()->set_message(
          "a trainer serves no model");
      session->Send(m);
    }
  }
  if (*registered && options_.observer) options_.observer->OnConnected(false);
  session->cancel = true;  // The lease is lost with the stream.
  if (job.joinable()) job.join();
  session->ended.Notify();
  beat.join();
  session->CloseWrites();
  const grpc::Status status = session->stream->Finish();
  {
    absl::MutexLock lock(&mu_);
    session_.reset();
  }
  if (status.ok()) return absl::OkStatus();
  return absl::UnavailableError(rpc::DescribeStatus(status));
}

absl::Status TrainerService::Run() {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      rpc::MakeChannel(options_.channel);
  if (!channel.ok()) return channel.status();
  stub_ = v1::WorkerService::NewStub(*channel);
  absl::Duration backoff = options_.backoff_initial;
  while (true) {
    bool registered = false;
    const absl::Status s = ServeSession(&registered);
    {
      absl::MutexLock lock(&mu_);
      if (draining_) return absl::OkStatus();
    }
    if (registered) backoff = options_.backoff_initial;
    Log(absl::StrCat("disconnected status=\"", s.ToString(),
                     "\" retry_in=", absl::FormatDuration(backoff)));
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
}

}  // namespace lvs::trainer
