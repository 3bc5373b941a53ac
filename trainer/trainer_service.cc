// lvs-trainer's server connection and job runner.
#include "trainer/trainer_service.h"

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "server/proto_time.h"
#include "trainer/checkpoint.h"
#include "trainer/spec_proto.h"
#include "trainer/trainer.h"
#include "trainer/trainer_group.h"
#include "trainer/vae_trainer.h"

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
  server::ToProto(absl::Now(), c->mutable_time());
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
// the same state). T: TrainerGroup or VaeTrainer.
template <typename T>
absl::StatusOr<std::string> Checkpoint(const T& tr, const std::string& root) {
  const std::string dir = CheckpointDir(root, tr.next_step());
  if (std::filesystem::exists(dir)) return dir;
  if (absl::Status s = tr.SaveCheckpoint(dir); !s.ok()) return s;
  return dir;
}

}  // namespace

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

namespace {

// One leased job: where it reports, and how it ends.
struct JobRun {
  TrainerSession* session;
  TrainerObserver* obs;
  std::string lease, job, root;
  int64_t max_steps = 0, checkpoint_interval = 0;

  void Fail(const absl::Status& s) const {
    if (obs) obs->OnJobEnded(job, "failed");
    Log(absl::StrCat("training_failed job=", job, " error=\"", s.ToString(),
                     "\""));
    session->Send(Failure(lease, s));
  }
};

// Runs the steps of a created (and possibly resumed) trainer, reporting
// every step and checkpoint; stops within one step of a cancel. Returns the
// final checkpoint, or an empty string when the job failed or was cancelled
// (already reported). T: TrainerGroup (DiT) or VaeTrainer.
template <typename T>
std::string RunSteps(const JobRun& run, T& tr) {
  TrainerSession* session = run.session;
  if (run.obs) run.obs->OnJobStarted(run.job, tr.next_step(), run.max_steps);
  while (!tr.done()) {
    if (session->cancel) {
      v1::WorkerMessage ack;
      ack.mutable_cancel_ack()->set_lease_id(run.lease);
      session->Send(ack);
      Log(absl::StrCat("training_cancelled job=", run.job,
                       " step=", tr.next_step()));
      if (run.obs) run.obs->OnJobEnded(run.job, "cancelled");
      return "";
    }
    absl::StatusOr<StepStats> st = tr.Step();
    if (!st.ok()) {
      run.Fail(st.status());
      return "";
    }
    session->Send(ReportStep(run.lease, *st, run.max_steps));
    if (run.obs) run.obs->OnStep(run.job, *st);
    const int64_t done = tr.next_step();
    if (run.checkpoint_interval > 0 && done % run.checkpoint_interval == 0 &&
        !tr.done()) {
      absl::StatusOr<std::string> dir = Checkpoint(tr, run.root);
      if (!dir.ok()) {
        run.Fail(dir.status());
        return "";
      }
      if (run.obs) run.obs->OnCheckpoint(run.job, done);
      session->Send(ReportCheckpoint(run.lease, done, *dir));
    }
  }
  absl::StatusOr<std::string> dir = Checkpoint(tr, run.root);
  if (!dir.ok()) {
    run.Fail(dir.status());
    return "";
  }
  if (run.obs) run.obs->OnCheckpoint(run.job, tr.next_step());
  // The final checkpoint is reported like the others (watchers see it, and
  // it becomes the job's last_checkpoint); the caller sends the result.
  session->Send(ReportCheckpoint(run.lease, tr.next_step(), *dir));
  return *dir;
}

// Reports the job's completion with its final checkpoint `dir`.
void Complete(const JobRun& run, int64_t steps, const std::string& dir) {
  v1::WorkerMessage m;
  v1::TrainingResult* r = m.mutable_training_result();
  r->set_lease_id(run.lease);
  r->mutable_completed()->set_steps(steps);
  r->mutable_completed()->mutable_checkpoint()->set_step(steps);
  r->mutable_completed()->mutable_checkpoint()->set_path(dir);
  server::ToProto(absl::Now(),
                  r->mutable_completed()->mutable_checkpoint()->mutable_time());
  run.session->Send(m);
  Log(absl::StrCat("training_completed job=", run.job, " checkpoint=", dir));
  if (run.obs) run.obs->OnJobEnded(run.job, "completed");
}

// A VAE job: trains from step 0 (VAE runs keep no optimizer state, so a
// new attempt starts over; the trajectory is deterministic), then logs the
// held-out PSNR of the final checkpoint.
void RunVaeJob(const JobRun& run, const v1::TrainingAssignment& a,
               const std::string& device) {
  absl::StatusOr<VaeTrainSpec> spec = VaeTrainSpecFromProto(a.spec());
  if (!spec.ok()) return run.Fail(spec.status());
  if (a.has_resume_from() && !a.resume_from().path().empty()) {
    Log(absl::StrCat("training_restart job=", run.job,
                     " reason=\"VAE runs start over from step 0\""));
  }
  absl::StatusOr<std::unique_ptr<VaeTrainer>> tr =
      VaeTrainer::Create(*spec, torch::Device(device));
  if (!tr.ok()) return run.Fail(tr.status());
  Log(absl::StrCat("training_vae job=", run.job, " device=", device,
                   " lists=", spec->records.size()));
  const std::string dir = RunSteps(run, **tr);
  if (dir.empty()) return;
  if (!spec->heldout.empty()) {
    int64_t clips = 0;
    absl::StatusOr<double> psnr = HeldoutPsnr(*spec, dir, &clips);
    if (!psnr.ok()) return run.Fail(psnr.status());
    Log(absl::StrCat("training_heldout job=", run.job, " psnr_db=", *psnr,
                     " clips=", clips, " checkpoint=", dir));
  }
  Complete(run, (*tr)->next_step(), dir);
}

}  // namespace

void TrainerService::RunJob(std::shared_ptr<TrainerSession> session,
                            v1::TrainingAssignment a) {
  JobRun run;
  run.session = session.get();
  run.obs = options_.observer;
  run.lease = a.lease_id();
  run.job = a.job();
  run.root = options_.work_dir + "/" + a.job().substr(a.job().find('/') + 1);
  run.max_steps = a.spec().max_steps();
  run.checkpoint_interval = a.spec().checkpoint_interval();
  Log(absl::StrCat("training_started job=", a.job(), " attempt=", a.attempt(),
                   " model_type=", v1::ModelType_Name(a.spec().model_type()),
                   " resume_from=", a.resume_from().path()));
  if (IsVaeJob(a.spec())) return RunVaeJob(run, a, options_.device);
  absl::StatusOr<TrainSpec> spec = TrainSpecFromProto(a.spec());
  if (!spec.ok()) return run.Fail(spec.status());
  // Unspecified precision: bf16 with fp32 masters on GPUs, fp32 on CPUs.
  if (a.spec().precision() == v1::PRECISION_UNSPECIFIED &&
      options_.device.rfind("cuda", 0) == 0) {
    spec->precision = TrainPrecision::kBFloat16;
  }
  absl::StatusOr<std::unique_ptr<TrainerGroup>> tr =
      TrainerGroup::Create(*spec, options_.device);
  if (!tr.ok()) return run.Fail(tr.status());
  Log(absl::StrCat(
      "training_ranks job=", a.job(), " ranks=", (*tr)->size(),
      " device=", options_.device, " precision=",
      spec->precision == TrainPrecision::kBFloat16 ? "bf16" : "fp32"));
  if (a.has_resume_from() && !a.resume_from().path().empty()) {
    if (absl::Status s = (*tr)->Resume(a.resume_from().path()); !s.ok()) {
      return run.Fail(s);
    }
  }
  const std::string dir = RunSteps(run, **tr);
  if (!dir.empty()) Complete(run, (*tr)->next_step(), dir);
}

absl::Status TrainerService::ServeSession(bool* registered) {
  auto session = std::make_shared<TrainerSession>();
  client::PrepareContext(&session->context, absl::ZeroDuration(),
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
  return absl::UnavailableError(client::DescribeStatus(status));
}

absl::Status TrainerService::Run() {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      client::MakeChannel(options_.channel);
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
