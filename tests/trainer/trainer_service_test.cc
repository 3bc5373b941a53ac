// lvs-trainer as a real process on loopback with lvs-server: a submitted
// job trains to completion, survives `kill -9` of its trainer (a new
// trainer resumes it from the last checkpoint), can be cancelled, and bad
// specs fail with INVALID_ARGUMENT naming the field.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "tests/trainer/trainer_test_util.h"
#include "tests/worker/cluster.h"

namespace lvs::trainer {
namespace {

namespace pb = ::lumina::video::v1;
using ::lvs::testing::Cluster;
using ::lvs::testing::Subprocess;

class TrainerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<Cluster>(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(cluster_->StartServer({"--lease-seconds=3"}).ok());
    testing::WriteTinyCheckpoint(cluster_->dir() + "/init");
    records_ =
        testing::WriteSyntheticLatents(cluster_->dir() + "/data", 4, 5, 8, 8);
  }

  Subprocess StartTrainer(const std::string& name) {
    auto p = Subprocess::Start(
        {LVS_TRAINER_BIN,
         absl::StrCat("--server=127.0.0.1:", cluster_->worker_port()),
         absl::StrCat("--name=", name),
         absl::StrCat("--work-dir=", cluster_->dir(), "/ckpt")},
        absl::StrCat(cluster_->dir(), "/", name, ".log"));
    EXPECT_TRUE(p.ok()) << p.status();
    return *std::move(p);
  }

  pb::TrainingJobSpec Spec(int64_t steps, int64_t interval) const {
    pb::TrainingJobSpec s;
    s.set_init_from(cluster_->dir() + "/init");
    s.set_learning_rate(1e-3);
    s.set_max_steps(steps);
    s.set_checkpoint_interval(interval);
    s.set_seed(3);
    pb::TrainingTask* t = s.add_tasks();
    t->set_name("V-FP2");
    t->set_media_type(pb::MEDIA_TYPE_VIDEO);
    t->add_records(records_);
    t->set_global_batch_size(2);
    t->set_micro_batch_size(1);
    t->set_image_size(64);
    t->set_max_frames(8);
    t->set_task_ratio(1);
    t->set_patch("2x2");
    return s;
  }

  pb::TrainingJob Create(const pb::TrainingJobSpec& spec) {
    pb::CreateTrainingJobRequest req;
    *req.mutable_spec() = spec;
    pb::TrainingJob job;
    grpc::ClientContext ctx;
    const grpc::Status s = cluster_->admin().CreateTrainingJob(&ctx, req, &job);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return job;
  }

  pb::TrainingJob Get(const std::string& name) {
    pb::GetTrainingJobRequest req;
    req.set_name(name);
    pb::TrainingJob job;
    grpc::ClientContext ctx;
    cluster_->admin().GetTrainingJob(&ctx, req, &job);
    return job;
  }

  // Polls until `done` holds (or 120 s pass) and returns the job.
  pb::TrainingJob WaitFor(
      const std::string& name,
      const std::function<bool(const pb::TrainingJob&)>& done) {
    const absl::Time end = absl::Now() + absl::Seconds(120);
    pb::TrainingJob job = Get(name);
    while (!done(job) && absl::Now() < end) {
      absl::SleepFor(absl::Milliseconds(50));
      job = Get(name);
    }
    return job;
  }

  std::unique_ptr<Cluster> cluster_;
  std::string records_;
};

bool Finished(const pb::TrainingJob& j) {
  return j.state() == pb::SUCCEEDED || j.state() == pb::FAILED ||
         j.state() == pb::CANCELLED;
}

TEST_F(TrainerServiceTest, KilledTrainerIsResumedFromItsLastCheckpoint) {
  Subprocess first = StartTrainer("trainer-a");
  const pb::TrainingJob job = Create(Spec(24, 4));
  pb::TrainingJob j = WaitFor(job.name(), [](const pb::TrainingJob& j) {
    return j.last_checkpoint().step() >= 8 || Finished(j);
  });
  ASSERT_EQ(j.state(), pb::RUNNING) << j.DebugString();
  first.Signal(SIGKILL);
  ASSERT_TRUE(first.Wait(absl::Seconds(10)).has_value());
  const int64_t resumed_from = Get(job.name()).last_checkpoint().step();
  ASSERT_GE(resumed_from, 8);
  Subprocess second = StartTrainer("trainer-b");
  j = WaitFor(job.name(), Finished);
  ASSERT_EQ(j.state(), pb::SUCCEEDED) << j.DebugString();
  EXPECT_EQ(j.attempts(), 2);
  EXPECT_EQ(j.trainer(), "trainer-b");
  EXPECT_EQ(j.last_step().step(), 24);
  EXPECT_EQ(j.last_step().total_steps(), 24);
  EXPECT_GT(j.last_step().samples_per_second(), 0);
  EXPECT_EQ(j.last_step().task_loss().count("V-FP2"), 1u);
  EXPECT_EQ(j.last_checkpoint().step(), 24);
  EXPECT_TRUE(
      std::filesystem::exists(j.last_checkpoint().path() + "/" + kModelFile));
  // The second trainer started where the first one's checkpoint was.
  const std::string log = ::lvs::testing::ReadFile(second.log_path());
  EXPECT_TRUE(absl::StrContains(
      log,
      absl::StrCat("step-",
                   std::string(7 - std::to_string(resumed_from).size(), '0'),
                   resumed_from)))
      << log;
}

TEST_F(TrainerServiceTest, CancelStopsTheJobAndTheTrainerTakesTheNext) {
  Subprocess trainer = StartTrainer("trainer-c");
  const pb::TrainingJob job = Create(Spec(100000, 0));
  WaitFor(job.name(),
          [](const pb::TrainingJob& j) { return j.last_step().step() >= 2; });
  pb::CancelTrainingJobRequest req;
  req.set_name(job.name());
  pb::TrainingJob out;
  grpc::ClientContext ctx;
  ASSERT_TRUE(cluster_->admin().CancelTrainingJob(&ctx, req, &out).ok());
  EXPECT_EQ(WaitFor(job.name(), Finished).state(), pb::CANCELLED);
  // The same trainer runs the next job.
  const pb::TrainingJob next = Create(Spec(2, 0));
  EXPECT_EQ(WaitFor(next.name(), Finished).state(), pb::SUCCEEDED);
  EXPECT_TRUE(trainer.Running());
}

TEST_F(TrainerServiceTest, BadSpecsFailWithInvalidArgumentNamingTheField) {
  Subprocess trainer = StartTrainer("trainer-d");
  pb::TrainingJobSpec missing = Spec(2, 0);
  missing.mutable_tasks(0)->set_records(0, cluster_->dir() + "/none.jsonl");
  pb::TrainingJobSpec patch = Spec(2, 0);
  patch.mutable_tasks(0)->set_patch("4x2");  // The model has no 2-4.
  for (const auto& [spec, field] :
       {std::make_pair(missing, "tasks[0].records[0]"),
        std::make_pair(patch, "tasks[0].patch")}) {
    const pb::TrainingJob j = WaitFor(Create(spec).name(), Finished);
    EXPECT_EQ(j.state(), pb::FAILED);
    EXPECT_EQ(j.error().code(), 3) << j.error().message();  // INVALID_ARGUMENT
    EXPECT_TRUE(absl::StartsWith(j.error().message(), field))
        << j.error().message();
    EXPECT_EQ(j.attempts(), 1);  // Permanent: no retry.
  }
}

TEST_F(TrainerServiceTest, CliSubmitsWatchesListsAndCancels) {
  Subprocess trainer = StartTrainer("trainer-e");
  std::string json;
  google::protobuf::util::MessageToJsonString(Spec(3, 2), &json);
  const std::string spec = cluster_->dir() + "/spec.json";
  std::ofstream(spec) << json;
  const std::string server = absl::StrCat("--server=", cluster_->address());
  std::string out;
  auto lvs = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {::lvs::testing::CliBinary(), server});
    absl::StatusOr<int> rc =
        ::lvs::testing::RunCommand(args, absl::Seconds(120), &out);
    return rc.ok() && WIFEXITED(*rc) ? WEXITSTATUS(*rc) : -1;
  };
  ASSERT_EQ(lvs({"train", "submit", "--spec=" + spec}), 0) << out;
  const std::string name(absl::StripAsciiWhitespace(out));
  ASSERT_TRUE(absl::StartsWith(name, "trainingJobs/")) << out;
  ASSERT_EQ(lvs({"train", "watch", name}), 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "step 3/3 loss")) << out;
  EXPECT_TRUE(absl::StrContains(out, "checkpoint step 2")) << out;
  EXPECT_TRUE(absl::StrContains(out, "completed: 3 steps")) << out;
  ASSERT_EQ(lvs({"train", "list"}), 0) << out;
  EXPECT_TRUE(absl::StrContains(out, name)) << out;
  EXPECT_TRUE(absl::StrContains(out, "SUCCEEDED")) << out;
  EXPECT_EQ(lvs({"train", "cancel", "no-such-job"}), 1) << out;
  EXPECT_EQ(lvs({"train", "submit", "--spec=" + spec + ".missing"}), 2);
}

// A leased job with data_parallel 2 runs as two ranks inside the trainer
// and ends where the same job with one rank ends; a bf16 job keeps fp32
// masters in its checkpoint.
TEST_F(TrainerServiceTest, DataParallelAndBf16LeasedJobs) {
  Subprocess trainer = StartTrainer("trainer-f");
  pb::TrainingJobSpec two = Spec(4, 0);
  two.set_data_parallel(2);
  pb::TrainingJobSpec bf16 = two;
  bf16.set_precision(pb::PRECISION_BF16);
  std::vector<pb::TrainingJob> done;
  for (const pb::TrainingJobSpec& spec : {Spec(4, 0), two, bf16}) {
    done.push_back(WaitFor(Create(spec).name(), Finished));
    ASSERT_EQ(done.back().state(), pb::SUCCEEDED) << done.back().DebugString();
  }
  auto weights = [](const pb::TrainingJob& j) {
    return io::LoadSafetensors(j.last_checkpoint().path() + "/" + kModelFile)
        .value();
  };
  const io::TensorMap a = weights(done[0]), b = weights(done[1]),
                      c = weights(done[2]),
                      init = io::LoadSafetensors(cluster_->dir() + "/init/" +
                                                 kModelFile)
                                 .value();
  double diff = 0, norm = 0, moved = 0;
  for (const auto& [key, t] : a) {
    diff += (b.at(key) - t).pow(2).sum().item<double>();
    norm += t.pow(2).sum().item<double>();
    ASSERT_EQ(c.at(key).scalar_type(), torch::kFloat32) << key;
    moved += (c.at(key) - init.at(key)).abs().sum().item<double>();
  }
  EXPECT_LT(std::sqrt(diff / norm), 1e-5);
  EXPECT_GT(moved, 0);
  EXPECT_EQ(done[1].last_step().step(), 4);
  const std::string log = ::lvs::testing::ReadFile(trainer.log_path());
  EXPECT_TRUE(
      absl::StrContains(log, absl::StrCat("\"job_id\":\"", done[1].name(),
                                          "\",\"ranks\":2,\"device\":\"cpu\","
                                          "\"precision\":\"fp32\"")))
      << log;
  EXPECT_TRUE(
      absl::StrContains(log, absl::StrCat("\"job_id\":\"", done[2].name(),
                                          "\",\"ranks\":2,\"device\":\"cpu\","
                                          "\"precision\":\"bf16\"")))
      << log;
}

}  // namespace
}  // namespace lvs::trainer
