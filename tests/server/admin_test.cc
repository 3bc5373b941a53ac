// AdminService in process: training jobs end to end with a scripted trainer
// (validation, lease, steps, checkpoints, watch, resume after a lost
// trainer), queue statistics, worker drain and model reload.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "server/rich_status.h"
#include "tests/server/server_fixture.h"

namespace lvs::server {
namespace {

namespace v1 = ::lumina::video::v1;
using testing::kAdminKey;
using testing::kWorkerToken;
using testing::ScriptedWorker;

class AdminTest : public testing::ServerFixture {
 protected:
  static v1::TrainingJobSpec Spec() {
    v1::TrainingJobSpec s;
    v1::TrainingTask* t = s.add_tasks();
    t->set_name("video");
    t->set_media_type(v1::MEDIA_TYPE_VIDEO);
    t->add_records("/data/records.jsonl");
    t->set_global_batch_size(4);
    t->set_micro_batch_size(2);
    t->set_image_size(256);
    t->set_max_frames(16);
    t->set_task_ratio(1);
    t->set_patch("1x2");
    s.set_model("tiny");
    s.set_learning_rate(2e-4);
    s.set_max_steps(10);
    return s;
  }

  grpc::Status CreateTraining(const v1::TrainingJobSpec& spec,
                              v1::TrainingJob* job) {
    v1::CreateTrainingJobRequest req;
    *req.mutable_spec() = spec;
    return admin_->CreateTrainingJob(Ctx(kAdminKey).get(), req, job);
  }

  static v1::TrainingAssignment LeaseTraining(ScriptedWorker& trainer) {
    v1::WorkerMessage m;
    m.mutable_lease_request();
    trainer.Send(m);
    v1::ServerMessage in;
    while (trainer.Read(&in)) {
      if (in.has_training_assignment()) return in.training_assignment();
    }
    ADD_FAILURE() << "no training assignment";
    return {};
  }

  static void Report(ScriptedWorker& trainer, const std::string& lease,
                     const v1::TrainingEvent& event) {
    v1::WorkerMessage m;
    m.mutable_training_report()->set_lease_id(lease);
    *m.mutable_training_report()->mutable_event() = event;
    trainer.Send(m);
  }
};

TEST_F(AdminTest, BadTrainingSpecNamesTheFields) {
  StartServer();
  v1::TrainingJobSpec spec = Spec();
  spec.mutable_tasks(0)->set_patch("3");
  spec.mutable_tasks(0)->clear_records();
  v1::TrainingJob job;
  grpc::Status s = CreateTraining(spec, &job);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  const google::rpc::Status details = DetailsOf(s);
  google::rpc::BadRequest bad;
  for (const auto& any : details.details()) any.UnpackTo(&bad);
  std::set<std::string> fields;
  for (const auto& v : bad.field_violations()) fields.insert(v.field());
  EXPECT_EQ(fields, (std::set<std::string>{"spec.tasks[0].records",
                                           "spec.tasks[0].patch"}));
}

TEST_F(AdminTest, TrainingJobResumesOnANewTrainerAndCanBeWatched) {
  StartServer();
  v1::TrainingJob job;
  ASSERT_TRUE(CreateTraining(Spec(), &job).ok());
  EXPECT_EQ(job.state(), v1::QUEUED);
  EXPECT_EQ(job.name().rfind("trainingJobs/", 0), 0u);

  auto first = std::make_unique<ScriptedWorker>(
      app_->worker_port(), "t1", kWorkerToken, v1::WORKER_KIND_TRAINER);
  v1::TrainingAssignment a = LeaseTraining(*first);
  EXPECT_EQ(a.job(), job.name());
  EXPECT_EQ(a.spec().max_steps(), 10);
  v1::TrainingEvent step;
  step.mutable_step()->set_step(5);
  step.mutable_step()->set_loss(0.5f);
  (*step.mutable_step()->mutable_task_loss())["video"] = 0.5f;
  Report(*first, a.lease_id(), step);
  v1::TrainingEvent ckpt;
  ckpt.mutable_checkpoint()->set_step(5);
  ckpt.mutable_checkpoint()->set_path("/ckpt/000005");
  Report(*first, a.lease_id(), ckpt);
  // Wait until the server recorded the checkpoint, then the trainer dies.
  v1::GetTrainingJobRequest get;
  get.set_name(job.name());
  v1::TrainingJob got;
  for (int i = 0; i < 500 && got.last_checkpoint().path().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(admin_->GetTrainingJob(Ctx(kAdminKey).get(), get, &got).ok());
  }
  first->ctx().TryCancel();
  first.reset();

  ScriptedWorker second(app_->worker_port(), "t2", kWorkerToken,
                        v1::WORKER_KIND_TRAINER);
  v1::TrainingAssignment b = LeaseTraining(second);
  EXPECT_EQ(b.attempt(), 2);
  EXPECT_EQ(b.resume_from().step(), 5);
  EXPECT_EQ(b.resume_from().path(), "/ckpt/000005");
  v1::WorkerMessage done;
  done.mutable_training_result()->set_lease_id(b.lease_id());
  done.mutable_training_result()->mutable_completed()->set_steps(10);
  done.mutable_training_result()
      ->mutable_completed()
      ->mutable_checkpoint()
      ->set_path("/ckpt/final");
  second.Send(done);

  v1::WatchTrainingJobRequest watch;
  watch.set_name(job.name());
  auto ctx = Ctx(kAdminKey);
  auto reader = admin_->WatchTrainingJob(ctx.get(), watch);
  std::vector<std::string> kinds;
  v1::TrainingEvent e;
  while (reader->Read(&e)) {
    kinds.push_back(
        e.GetDescriptor()->FindFieldByNumber(e.event_case())->name());
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(kinds, (std::vector<std::string>{"queued", "started", "step",
                                             "checkpoint", "requeued", "queued",
                                             "started", "completed"}));

  ASSERT_TRUE(admin_->GetTrainingJob(Ctx(kAdminKey).get(), get, &got).ok());
  EXPECT_EQ(got.state(), v1::SUCCEEDED);
  EXPECT_EQ(got.trainer(), "t2");
  EXPECT_EQ(got.last_step().step(), 5);
  EXPECT_EQ(got.last_checkpoint().path(), "/ckpt/000005");
  v1::ListTrainingJobsResponse list;
  ASSERT_TRUE(admin_->ListTrainingJobs(Ctx(kAdminKey).get(), {}, &list).ok());
  // An unknown state is refused, as ListVideoJobs does (it was accepted).
  v1::ListTrainingJobsRequest bad_state;
  bad_state.set_state(static_cast<v1::JobState>(42));
  v1::ListTrainingJobsResponse unused;
  EXPECT_EQ(admin_->ListTrainingJobs(Ctx(kAdminKey).get(), bad_state, &unused)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_EQ(list.jobs_size(), 1);
  v1::CancelTrainingJobRequest cancel;
  cancel.set_name(job.name());
  EXPECT_EQ(admin_->CancelTrainingJob(Ctx(kAdminKey).get(), cancel, &got)
                .error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  // The finished job's checkpoint is loaded by a generator without restart.
  ScriptedWorker gen(app_->worker_port(), "g1");
  v1::ServerMessage m;
  ASSERT_TRUE(gen.Read(&m));  // Registered.
  auto reload = std::async(std::launch::async, [&] {
    v1::ReloadModelRequest req;
    req.set_training_job(job.name());
    v1::ReloadModelResponse resp;
    grpc::Status s = admin_->ReloadModel(Ctx(kAdminKey).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  });
  ASSERT_TRUE(gen.Read(&m));
  ASSERT_TRUE(m.has_reload());
  EXPECT_EQ(m.reload().checkpoint(), "/ckpt/final");
  v1::WorkerMessage answer;
  answer.mutable_reload_result()->set_reload_id(m.reload().reload_id());
  answer.mutable_reload_result()->set_model_version("ckpt/final@10");
  gen.Send(answer);
  v1::ReloadModelResponse resp = reload.get();
  ASSERT_EQ(resp.results_size(), 1);
  EXPECT_EQ(resp.results(0).worker(), "g1");
  EXPECT_EQ(resp.results(0).model_version(), "ckpt/final@10");
  second.Close();
  gen.Close();
}

TEST_F(AdminTest, QueueStatsAndWorkerDrain) {
  StartServer();
  v1::VideoJob job;
  v1::GenerateVideoRequest high = Request();
  high.set_priority(v1::PRIORITY_HIGH);
  ASSERT_TRUE(Create(&job).ok());
  ASSERT_TRUE(Create(&job, "", testing::kClientKey, high).ok());
  ASSERT_TRUE(Create(&job).ok());
  ScriptedWorker worker(app_->worker_port(), "w1");
  v1::JobAssignment a = worker.Lease();
  EXPECT_EQ(a.request().priority(), v1::PRIORITY_HIGH);

  v1::QueueStats stats;
  ASSERT_TRUE(admin_->GetQueueStats(Ctx(kAdminKey).get(), {}, &stats).ok());
  EXPECT_EQ(stats.queued(), 2);
  EXPECT_EQ(stats.running(), 1);
  EXPECT_EQ(stats.workers_busy(), 1);
  EXPECT_EQ(stats.max_queue(), 4);
  ASSERT_EQ(stats.depth_size(), 3);
  EXPECT_EQ(stats.depth(0).priority(), v1::PRIORITY_HIGH);
  EXPECT_EQ(stats.depth(0).queued(), 0);
  EXPECT_EQ(stats.depth(1).queued(), 2);

  v1::DrainWorkerRequest drain;
  drain.set_name("w1");
  v1::Worker w;
  ASSERT_TRUE(admin_->DrainWorker(Ctx(kAdminKey).get(), drain, &w).ok());
  EXPECT_EQ(w.state(), v1::WORKER_STATE_DRAINING);
  EXPECT_EQ(w.current_job(), a.job());
  v1::ServerMessage m;
  bool drained = false;
  while (!drained && worker.Read(&m)) drained = m.has_drain();
  EXPECT_TRUE(drained);
  drain.set_name("nobody");
  EXPECT_EQ(admin_->DrainWorker(Ctx(kAdminKey).get(), drain, &w).error_code(),
            grpc::StatusCode::NOT_FOUND);
  worker.Close();
}

}  // namespace
}  // namespace lvs::server
