// Fault tests with real processes on loopback: kill -9 of a worker mid-job,
// kill -9 of the server with queued and running jobs, SIGTERM drains of the
// server and of a worker with health transitions, and a failing model.
#include <signal.h>
#include <sys/wait.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "tests/worker/cluster.h"

namespace lvs::testing {
namespace {

namespace pb = ::lumina::video::v1;

#define LVS_ASSERT_OK(expr)          \
  do {                               \
    const absl::Status st_ = (expr); \
    ASSERT_TRUE(st_.ok()) << st_;    \
  } while (0)

// Counts log lines of `log` that contain every one of `parts`.
int CountLines(const std::string& log, const std::vector<std::string>& parts) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    bool all = true;
    for (const std::string& p : parts) all = all && absl::StrContains(line, p);
    n += all ? 1 : 0;
  }
  return n;
}

bool Running(const pb::VideoJob& j) {
  return j.state() == pb::RUNNING && j.progress().step() >= 2;
}

TEST(ServingFaultTest, KilledWorkerMidJobFinishesOnTheOtherWorkerOnce) {
  Cluster c("kill-worker");
  LVS_ASSERT_OK(c.StartServer({"--lease-seconds=3", "--heartbeat-seconds=1"}));
  LVS_ASSERT_OK(c.StartWorker("w1", {"--fake-step-ms=100"}));
  LVS_ASSERT_OK(c.StartWorker("w2", {"--fake-step-ms=100"}));
  absl::StatusOr<pb::VideoJob> job = c.Create(SmallRequest(10, 9));
  ASSERT_TRUE(job.ok()) << job.status();
  absl::StatusOr<pb::VideoJob> running =
      c.WaitFor(job->name(), Running, absl::Seconds(20));
  ASSERT_TRUE(running.ok()) << running.status();
  const std::string victim = running->worker();
  const std::string other = victim == "w1" ? "w2" : "w1";
  c.worker(victim).Signal(SIGKILL);
  ASSERT_TRUE(c.worker(victim).Wait(absl::Seconds(5)).has_value());

  absl::StatusOr<pb::VideoJob> end =
      c.WaitFinished(job->name(), absl::Seconds(30));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::SUCCEEDED);
  EXPECT_EQ(end->worker(), other);
  EXPECT_EQ(end->attempts(), 2);
  // Completed once: one SUCCEEDED transition, one finished run on `other`.
  // (The log line may trail the state change a little.)
  const std::vector<std::string> succeeded = {job->name(), "\"SUCCEEDED\""};
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (CountLines(ReadFile(c.server().log_path()), succeeded) == 0 &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  const std::string server_log = ReadFile(c.server().log_path());
  EXPECT_EQ(CountLines(server_log, succeeded), 1) << server_log;
  EXPECT_EQ(
      CountLines(ReadFile(c.worker(other).log_path()),
                 {"\"job_end\"", job->name(), "\"outcome\":\"succeeded\""}),
      1);
  // The stored video is the second attempt's, whole and decodable.
  std::vector<pb::GenerateVideoEvent> events;
  absl::StatusOr<std::string> mp4 = c.Watch(job->name(), 0, &events);
  ASSERT_TRUE(mp4.ok()) << mp4.status();
  int completed = 0, requeued = 0;
  for (const auto& e : events) {
    completed += e.has_completed() ? 1 : 0;
    requeued += e.has_requeued() ? 1 : 0;
  }
  EXPECT_EQ(completed, 1);
  EXPECT_EQ(requeued, 1);
  EXPECT_EQ(static_cast<int64_t>(mp4->size()), end->result().size_bytes());
  absl::StatusOr<int> frames = CountFrames(*mp4);
  ASSERT_TRUE(frames.ok()) << frames.status();
  EXPECT_EQ(*frames, 9);
}

TEST(ServingFaultTest, KilledServerRunsItsQueuedJobsAfterRestart) {
  Cluster c("kill-server");
  LVS_ASSERT_OK(c.StartServer({"--lease-seconds=3", "--heartbeat-seconds=1"}));
  LVS_ASSERT_OK(c.StartWorker("w1", {"--fake-step-ms=100"}));
  std::vector<std::string> names;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<pb::VideoJob> job = c.Create(SmallRequest(6, 5));
    ASSERT_TRUE(job.ok()) << job.status();
    names.push_back(job->name());
  }
  // One job runs, three wait; then the server dies without warning.
  ASSERT_TRUE(c.WaitFor(names[0], Running, absl::Seconds(20)).ok());
  ASSERT_EQ(c.Get(names[3])->state(), pb::QUEUED);
  c.server().Signal(SIGKILL);
  ASSERT_TRUE(c.server().Wait(absl::Seconds(5)).has_value());

  // Same ports and data directory; the worker reconnects by itself.
  LVS_ASSERT_OK(c.StartServer({"--lease-seconds=3", "--heartbeat-seconds=1"}));
  for (const std::string& name : names) {
    absl::StatusOr<pb::VideoJob> end = c.WaitFinished(name, absl::Seconds(40));
    ASSERT_TRUE(end.ok()) << name << ": " << end.status();
    EXPECT_EQ(end->state(), pb::SUCCEEDED) << name;
    absl::StatusOr<std::string> mp4 = c.Watch(name, 0);
    ASSERT_TRUE(mp4.ok()) << mp4.status();
    absl::StatusOr<int> frames = CountFrames(*mp4);
    ASSERT_TRUE(frames.ok()) << frames.status();
    EXPECT_EQ(*frames, 5);
  }
  EXPECT_GE(CountLines(ReadFile(c.worker("w1").log_path()),
                       {"\"event\":\"registered\""}),
            2);
}

TEST(ServingFaultTest, ServerSigtermDrainsWithHealthTransitions) {
  Cluster c("drain-server");
  LVS_ASSERT_OK(c.StartServer({"--drain-grace=20s"}));
  EXPECT_EQ(c.Health(""), "SERVING");
  EXPECT_EQ(c.Health("lumina.video.v1.VideoService"), "SERVING");
  EXPECT_EQ(c.Health("no.such.Service"), "NOT_FOUND");
  EXPECT_EQ(c.HttpGet("/readyz"), 200);
  std::string metrics;
  EXPECT_EQ(c.HttpGet("/metrics", &metrics), 200);
  EXPECT_TRUE(absl::StrContains(metrics, "lvs_queue_depth"));

  LVS_ASSERT_OK(c.StartWorker("w1", {"--fake-step-ms=100"}));
  absl::StatusOr<pb::VideoJob> job = c.Create(SmallRequest(20, 5));
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(c.WaitFor(job->name(), Running, absl::Seconds(20)).ok());
  c.server().Signal(SIGTERM);
  // Draining: not ready, not serving, admits nothing, the job runs on.
  const absl::Time end = absl::Now() + absl::Seconds(5);
  while (c.HttpGet("/readyz") == 200 && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(c.HttpGet("/readyz"), 503);
  while (c.Health("") == "SERVING" && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(c.Health(""), "NOT_SERVING");
  pb::CreateVideoJobRequest create;
  *create.mutable_video() = SmallRequest();
  pb::VideoJob refused;
  grpc::ClientContext context;
  const grpc::Status s = c.video().CreateVideoJob(&context, create, &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE)
      << rpc::DescribeStatus(s);
  EXPECT_GT(rpc::DecodeErrorDetails(s).retry_delay, absl::ZeroDuration());

  // The running job finishes, then the server exits cleanly.
  std::optional<int> status = c.server().Wait(absl::Seconds(25));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  LVS_ASSERT_OK(c.StartServer());
  absl::StatusOr<pb::VideoJob> after = c.Get(job->name());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->state(), pb::SUCCEEDED);
}

TEST(ServingFaultTest, WorkerSigtermFinishesItsJobThenExits) {
  Cluster c("drain-worker");
  LVS_ASSERT_OK(c.StartServer());
  LVS_ASSERT_OK(c.StartWorker("w1", {"--fake-step-ms=100"}));
  absl::StatusOr<pb::VideoJob> job = c.Create(SmallRequest(10, 5));
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(c.WaitFor(job->name(), Running, absl::Seconds(20)).ok());
  c.worker("w1").Signal(SIGTERM);
  std::optional<int> status = c.worker("w1").Wait(absl::Seconds(20));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  absl::StatusOr<pb::VideoJob> end = c.Get(job->name());
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->state(), pb::SUCCEEDED);
  EXPECT_EQ(end->attempts(), 1);
  // The worker took no second job.
  absl::StatusOr<pb::VideoJob> next = c.Create(SmallRequest(2, 5));
  ASSERT_TRUE(next.ok());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(c.Get(next->name())->state(), pb::QUEUED);
}

TEST(ServingFaultTest, AnIdleWorkerExitsAtOnceOnSigterm) {
  Cluster c("idle-worker");
  LVS_ASSERT_OK(c.StartServer());
  LVS_ASSERT_OK(c.StartWorker("w1"));
  c.worker("w1").Signal(SIGTERM);
  std::optional<int> status = c.worker("w1").Wait(absl::Seconds(5));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  EXPECT_FALSE(c.WorkerListed("w1", absl::Milliseconds(200)));
}

TEST(ServingFaultTest, AFailingModelFailsTheJobAfterTheLastAttempt) {
  Cluster c("model-failure");
  LVS_ASSERT_OK(c.StartServer({"--max-attempts=2"}));
  LVS_ASSERT_OK(
      c.StartWorker("w1", {"--fake-step-ms=5", "--fake-fail-at-step=3"}));
  absl::StatusOr<pb::VideoJob> job = c.Create(SmallRequest(6, 5));
  ASSERT_TRUE(job.ok());
  absl::StatusOr<pb::VideoJob> end =
      c.WaitFinished(job->name(), absl::Seconds(20));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::FAILED);
  EXPECT_TRUE(absl::StrContains(end->error().message(), "step 3"))
      << end->error().message();
  EXPECT_LE(end->attempts(), 2);
}

}  // namespace
}  // namespace lvs::testing
