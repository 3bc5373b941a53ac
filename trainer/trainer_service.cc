// lvs-trainer's server connection and job runner.
#include "trainer/trainer_service.h"

#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "trainer/checkpoint.h"
#include "trainer/spec_proto.h"
#include "trainer/trainer.h"
#include "trainer/trainer_group.h"
#include "trainer/vae_trainer.h"

namespace lvs::trainer {
namespace v1 = ::lumina::video::v1;

namespace {

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

rpc::WorkerLinkOptions LinkOptions(const TrainerServiceOptions& o) {
  rpc::WorkerLinkOptions l;
  l.channel = o.channel;
  l.token = o.token;
  l.backoff_initial = o.backoff_initial;
  l.backoff_max = o.backoff_max;
  return l;
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

// One leased job: where it reports, and how it ends.
struct JobRun {
  const rpc::Lease* leased;
  TrainerObserver* obs;
  std::string lease, job, root;
  int64_t max_steps = 0, checkpoint_interval = 0;

  void Fail(const absl::Status& s) const {
    if (obs) obs->OnJobEnded(job, "failed");
    common::LogEvent("training_failed",
                     {{"job_id", job}, {"error", s.ToString()}},
                     common::LogLevel::kError);
    leased->Send(Failure(lease, s));
  }
};

// Runs the steps of a created (and possibly resumed) trainer, reporting
// every step and checkpoint; stops within one step of a cancel. Returns the
// final checkpoint, or an empty string when the job failed or was cancelled
// (already reported). T: TrainerGroup (DiT) or VaeTrainer.
template <typename T>
std::string RunSteps(const JobRun& run, T& tr) {
  if (run.obs) run.obs->OnJobStarted(run.job, tr.next_step(), run.max_steps);
  while (!tr.done()) {
    if (run.leased->cancelled()) {
      v1::WorkerMessage ack;
      ack.mutable_cancel_ack()->set_lease_id(run.lease);
      run.leased->Send(ack);
      common::LogEvent("training_cancelled",
                       {{"job_id", run.job}, {"step", tr.next_step()}});
      if (run.obs) run.obs->OnJobEnded(run.job, "cancelled");
      return "";
    }
    absl::StatusOr<StepStats> st = tr.Step();
    if (!st.ok()) {
      run.Fail(st.status());
      return "";
    }
    run.leased->Send(ReportStep(run.lease, *st, run.max_steps));
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
      run.leased->Send(ReportCheckpoint(run.lease, done, *dir));
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
  run.leased->Send(ReportCheckpoint(run.lease, tr.next_step(), *dir));
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
  common::ToProto(absl::Now(),
                  r->mutable_completed()->mutable_checkpoint()->mutable_time());
  run.leased->Send(m);
  common::LogEvent("training_completed",
                   {{"job_id", run.job}, {"checkpoint", dir}});
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
    common::LogEvent(
        "training_restart",
        {{"job_id", run.job}, {"reason", "VAE runs start over from step 0"}});
  }
  absl::StatusOr<std::unique_ptr<VaeTrainer>> tr =
      VaeTrainer::Create(*spec, torch::Device(device));
  if (!tr.ok()) return run.Fail(tr.status());
  common::LogEvent("training_vae",
                   {{"job_id", run.job},
                    {"device", device},
                    {"lists", static_cast<int64_t>(spec->records.size())}});
  const std::string dir = RunSteps(run, **tr);
  if (dir.empty()) return;
  if (!spec->heldout.empty()) {
    int64_t clips = 0;
    absl::StatusOr<double> psnr = HeldoutPsnr(*spec, dir, &clips);
    if (!psnr.ok()) return run.Fail(psnr.status());
    common::LogEvent("training_heldout", {{"job_id", run.job},
                                          {"psnr_db", *psnr},
                                          {"clips", clips},
                                          {"checkpoint", dir}});
  }
  Complete(run, (*tr)->next_step(), dir);
}

}  // namespace

TrainerService::TrainerService(TrainerServiceOptions options)
    : options_(std::move(options)), link_(LinkOptions(options_), this) {}

TrainerService::~TrainerService() {
  if (job_thread_.joinable()) job_thread_.join();
}

void TrainerService::Drain() { link_.Drain(); }

absl::Status TrainerService::Run() {
  absl::Status status = link_.Run();
  if (job_thread_.joinable()) job_thread_.join();
  return status;
}

v1::RegisterWorker TrainerService::Registration() {
  v1::RegisterWorker reg;
  reg.set_name(options_.name);
  reg.set_kind(v1::WORKER_KIND_TRAINER);
  reg.mutable_capabilities()->set_device(options_.device);
  reg.set_version("lvs-trainer 0.1");
  return reg;
}

void TrainerService::OnConnected(bool connected) {
  if (options_.observer) options_.observer->OnConnected(connected);
}

void TrainerService::StartLease(const v1::ServerMessage& assignment,
                                std::shared_ptr<rpc::Lease> lease) {
  // The previous job's thread has called Finish (the link gives out one
  // lease at a time) and is about to exit.
  if (job_thread_.joinable()) job_thread_.join();
  job_thread_ = std::thread(
      [this, lease = std::move(lease), a = assignment.training_assignment()] {
        RunJob(*lease, a);
        link_.Finish(lease);
      });
}

void TrainerService::RunJob(const rpc::Lease& leased,
                            const v1::TrainingAssignment& a) {
  JobRun run;
  run.leased = &leased;
  run.obs = options_.observer;
  run.lease = a.lease_id();
  run.job = a.job();
  run.root = options_.work_dir + "/" + a.job().substr(a.job().find('/') + 1);
  run.max_steps = a.spec().max_steps();
  run.checkpoint_interval = a.spec().checkpoint_interval();
  common::LogEvent("training_started",
                   {{"job_id", a.job()},
                    {"attempt", a.attempt()},
                    {"model_type", v1::ModelType_Name(a.spec().model_type())},
                    {"resume_from", a.resume_from().path()}});
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
  common::LogEvent(
      "training_ranks",
      {{"job_id", a.job()},
       {"ranks", (*tr)->size()},
       {"device", options_.device},
       {"precision",
        spec->precision == TrainPrecision::kBFloat16 ? "bf16" : "fp32"}});
  if (a.has_resume_from() && !a.resume_from().path().empty()) {
    if (absl::Status s = (*tr)->Resume(a.resume_from().path()); !s.ok()) {
      return run.Fail(s);
    }
  }
  const std::string dir = RunSteps(run, **tr);
  if (!dir.empty()) Complete(run, (*tr)->next_step(), dir);
}

}  // namespace lvs::trainer
