// lvs-trainer's server connection and job runner.
#include "trainer/trainer_service.h"

#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "trainer/checkpoint.h"
#include "trainer/trainer.h"
#include "trainer/trainer_group.h"

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

// Writes the checkpoint of the trainer's current step unless an earlier
// attempt wrote it already (the trajectory is deterministic, so it holds
// the same state).
rpc::WorkerLinkOptions LinkOptions(const TrainerServiceOptions& o) {
  rpc::WorkerLinkOptions l;
  l.channel = o.channel;
  l.token = o.token;
  l.backoff_initial = o.backoff_initial;
  l.backoff_max = o.backoff_max;
  return l;
}

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
  const std::string lease = a.lease_id();
  const std::string id = a.job().substr(a.job().find('/') + 1);
  const std::string root = options_.work_dir + "/" + id;
  common::LogEvent("training_started",
                   {{"job_id", a.job()},
                    {"attempt", a.attempt()},
                    {"resume_from", a.resume_from().path()}});
  TrainerObserver* obs = options_.observer;
  auto fail = [&](const absl::Status& s) {
    if (obs) obs->OnJobEnded(a.job(), "failed");
    common::LogEvent("training_failed",
                     {{"job_id", a.job()}, {"error", s.ToString()}},
                     common::LogLevel::kError);
    leased.Send(Failure(lease, s));
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
  common::LogEvent(
      "training_ranks",
      {{"job_id", a.job()},
       {"ranks", (*tr)->size()},
       {"device", options_.device},
       {"precision",
        spec->precision == TrainPrecision::kBFloat16 ? "bf16" : "fp32"}});
  if (a.has_resume_from() && !a.resume_from().path().empty()) {
    if (absl::Status s = (*tr)->Resume(a.resume_from().path()); !s.ok()) {
      return fail(s);
    }
  }
  if (obs) obs->OnJobStarted(a.job(), (*tr)->next_step(), spec->max_steps);
  while (!(*tr)->done()) {
    if (leased.cancelled()) {
      v1::WorkerMessage ack;
      ack.mutable_cancel_ack()->set_lease_id(lease);
      leased.Send(ack);
      common::LogEvent("training_cancelled",
                       {{"job_id", a.job()}, {"step", (*tr)->next_step()}});
      if (obs) obs->OnJobEnded(a.job(), "cancelled");
      return;
    }
    absl::StatusOr<StepStats> st = (*tr)->Step();
    if (!st.ok()) return fail(st.status());
    leased.Send(ReportStep(lease, *st, spec->max_steps));
    if (obs) obs->OnStep(a.job(), *st);
    const int64_t done = (*tr)->next_step();
    if (spec->checkpoint_interval > 0 &&
        done % spec->checkpoint_interval == 0 && !(*tr)->done()) {
      absl::StatusOr<std::string> dir = Checkpoint(**tr, root);
      if (!dir.ok()) return fail(dir.status());
      if (obs) obs->OnCheckpoint(a.job(), done);
      leased.Send(ReportCheckpoint(lease, done, *dir));
    }
  }
  absl::StatusOr<std::string> dir = Checkpoint(**tr, root);
  if (!dir.ok()) return fail(dir.status());
  if (obs) obs->OnCheckpoint(a.job(), (*tr)->next_step());
  // The final checkpoint is reported like the others (watchers see it, and
  // it becomes the job's last_checkpoint), then the result names it.
  leased.Send(ReportCheckpoint(lease, (*tr)->next_step(), *dir));
  v1::WorkerMessage m;
  v1::TrainingResult* r = m.mutable_training_result();
  r->set_lease_id(lease);
  r->mutable_completed()->set_steps((*tr)->next_step());
  r->mutable_completed()->mutable_checkpoint()->set_step((*tr)->next_step());
  r->mutable_completed()->mutable_checkpoint()->set_path(*dir);
  common::ToProto(absl::Now(),
                  r->mutable_completed()->mutable_checkpoint()->mutable_time());
  leased.Send(m);
  common::LogEvent("training_completed",
                   {{"job_id", a.job()}, {"checkpoint", *dir}});
  if (obs) obs->OnJobEnded(a.job(), "completed");
}

}  // namespace lvs::trainer
