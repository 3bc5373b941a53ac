// The trainer's Prometheus metrics: TrainerMetrics' exposition text after a
// sequence of observer calls (values, histogram, label escaping, promtool's
// lint), its HTTP endpoint, and real lvs-trainer processes with
// --metrics-listen: a local run scraped until its last step, and service
// mode's connection gauge and /healthz against a real lvs-server.
#include "trainer/trainer_metrics.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <regex>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/trainer/trainer_test_util.h"
#include "tests/worker/cluster.h"
#include "tests/worker/subprocess.h"

namespace lvs::trainer {
namespace {

using ::lvs::testing::Subprocess;

// Returns the value of the sample `series` (name with labels, exactly as
// rendered) in `text`, or nullopt when absent.
std::optional<double> Value(const std::string& text,
                            const std::string& series) {
  const std::string key = "\n" + series + " ";
  const size_t at = ("\n" + text).find(key);
  if (at == std::string::npos) return std::nullopt;
  const size_t begin = at + key.size() - 1;
  const std::string rest = text.substr(begin, text.find('\n', begin) - begin);
  double v = 0;
  if (rest == "NaN" || rest == "Nan") {
    return std::numeric_limits<double>::quiet_NaN();
  }
  if (!absl::SimpleAtod(rest, &v)) return std::nullopt;
  return v;
}

// Runs `promtool check metrics` on `text`; returns its exit status and
// fills `output`.
int Promtool(const std::string& text, const std::string& dir,
             std::string* output) {
  const std::string path = dir + "/metrics.txt";
  std::ofstream(path) << text;
  absl::StatusOr<int> status = ::lvs::testing::RunCommand(
      {"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + path},
      absl::Seconds(30), output);
  return status.ok() ? *status : -1;
}

StepStats Stats(int64_t step, double seconds) {
  StepStats s;
  s.step = step;
  s.loss = 0.5 + step;
  s.task_loss = {{"V-FP2", 0.75}, {"img \"q\"\\x", 0.25}};
  s.grad_norm = 1.25;
  s.learning_rate = 1e-4;
  s.samples = 4;
  s.seconds = seconds;
  return s;
}

TEST(TrainerMetricsTest, RendersObserverCallsWithEscapedLabels) {
  TrainerMetrics m("tr\"ain\\er\n0");
  const std::string t = R"(trainer="tr\"ain\\er\n0")";
  m.OnConnected(true);
  m.OnJobStarted("trainingJobs/1", 2, 10);
  std::string text = m.Render();
  EXPECT_EQ(Value(text, "lvs_trainer_connected{" + t + "}"), 1);
  EXPECT_EQ(Value(text, "lvs_trainer_busy{" + t + "}"), 1);
  EXPECT_EQ(Value(text, "lvs_trainer_step{" + t + "}"), 2);
  EXPECT_EQ(Value(text, "lvs_trainer_total_steps{" + t + "}"), 10);
  m.OnStep("trainingJobs/1", Stats(2, 0.3));
  m.OnStep("trainingJobs/1", Stats(3, 2.0));
  m.OnCheckpoint("trainingJobs/1", 4);
  m.OnJobEnded("trainingJobs/1", "completed");
  m.OnConnected(false);
  text = m.Render();
  EXPECT_EQ(Value(text, "lvs_trainer_connected{" + t + "}"), 0);
  EXPECT_EQ(Value(text, "lvs_trainer_connects_total{" + t + "}"), 1);
  EXPECT_EQ(Value(text, "lvs_trainer_busy{" + t + "}"), 0);
  EXPECT_EQ(Value(text, "lvs_trainer_steps_total{" + t + "}"), 2);
  EXPECT_EQ(Value(text, "lvs_trainer_samples_total{" + t + "}"), 8);
  EXPECT_EQ(Value(text, "lvs_trainer_step{" + t + "}"), 4);
  EXPECT_EQ(Value(text, "lvs_trainer_loss{" + t + "}"), 3.5);
  EXPECT_EQ(Value(text, "lvs_trainer_grad_norm{" + t + "}"), 1.25);
  EXPECT_EQ(Value(text, "lvs_trainer_learning_rate{" + t + "}"), 1e-4);
  EXPECT_EQ(Value(text, "lvs_trainer_checkpoints_total{" + t + "}"), 1);
  // Labels in name order (prometheus-cpp's text serializer).
  EXPECT_EQ(Value(text, "lvs_trainer_task_loss{task=\"V-FP2\"," + t + "}"),
            0.75);
  EXPECT_EQ(
      Value(text, R"(lvs_trainer_task_loss{task="img \"q\"\\x",)" + t + "}"),
      0.25);
  EXPECT_EQ(
      Value(text, "lvs_trainer_jobs_total{outcome=\"completed\"," + t + "}"),
      1);
  EXPECT_EQ(Value(text, "lvs_trainer_jobs_total{outcome=\"failed\"," + t + "}"),
            0);
  // Cumulative buckets: 0.3 s falls in le=0.5, 2 s in le=2.5.
  const std::string b = "lvs_trainer_step_seconds_bucket{" + t + ",le=";
  EXPECT_EQ(Value(text, b + "\"0.25\"}"), 0);
  EXPECT_EQ(Value(text, b + "\"0.5\"}"), 1);
  EXPECT_EQ(Value(text, b + "\"1\"}"), 1);
  EXPECT_EQ(Value(text, b + "\"2.5\"}"), 2);
  EXPECT_EQ(Value(text, b + "\"+Inf\"}"), 2);
  EXPECT_EQ(Value(text, "lvs_trainer_step_seconds_count{" + t + "}"), 2);
  EXPECT_NEAR(*Value(text, "lvs_trainer_step_seconds_sum{" + t + "}"), 2.3,
              1e-12);
  // A raw newline in a label value would break the line structure.
  EXPECT_EQ(text.find("er\n0"), std::string::npos);
  ASSERT_EQ(text.back(), '\n');
  std::string out;
  EXPECT_EQ(Promtool(text, testing::TempDir("metrics-lint"), &out), 0)
      << out << "\n"
      << text;
}

TEST(TrainerMetricsTest, NewJobForgetsOldTasksAndCountsOutcomes) {
  TrainerMetrics m("t");
  m.OnJobStarted("a", 0, 2);
  m.OnStep("a", Stats(0, 0.01));
  m.OnJobEnded("a", "failed");
  m.OnJobStarted("b", 0, 3);
  m.OnJobEnded("b", "cancelled");
  const std::string text = m.Render();
  EXPECT_EQ(text.find("lvs_trainer_task_loss{"), std::string::npos) << text;
  EXPECT_EQ(
      Value(text, R"(lvs_trainer_jobs_total{outcome="failed",trainer="t"})"),
      1);
  EXPECT_EQ(
      Value(text, R"(lvs_trainer_jobs_total{outcome="cancelled",trainer="t"})"),
      1);
  EXPECT_EQ(Value(text, R"(lvs_trainer_total_steps{trainer="t"})"), 3);
  EXPECT_EQ(
      Value(text, R"(lvs_trainer_step_seconds_bucket{trainer="t",le="0.01"})"),
      1);
}

TEST(TrainerMetricsTest, FormatsSpecialValues) {
  TrainerMetrics m("t");
  StepStats s = Stats(0, 0.1);
  s.loss = std::nan("");
  s.grad_norm = INFINITY;
  m.OnStep("j", s);
  const std::string text = m.Render();
  EXPECT_TRUE(std::isnan(*Value(text, R"(lvs_trainer_loss{trainer="t"})")))
      << text;
  EXPECT_EQ(Value(text, R"(lvs_trainer_grad_norm{trainer="t"})"), INFINITY);
  EXPECT_NE(text.find("lvs_trainer_build_info{"), std::string::npos);
  EXPECT_NE(text.find("\nprocess_cpu_seconds_total "), std::string::npos);
  std::string out;
  EXPECT_EQ(Promtool(text, testing::TempDir("metrics-special"), &out), 0)
      << out << "\n"
      << text;
}

TEST(TrainerMetricsTest, HealthFollowsConnectionUnlessLocal) {
  TrainerMetrics service("s"), local("l", /*local=*/true);
  EXPECT_FALSE(service.Healthy());
  EXPECT_TRUE(local.Healthy());
  service.OnConnected(true);
  EXPECT_TRUE(service.Healthy());
  service.OnConnected(false);
  EXPECT_FALSE(service.Healthy());
}

TEST(TrainerMetricsServerTest, ServesMetricsAndHealth) {
  TrainerMetrics m("http");
  TrainerMetricsServer server(&m);
  EXPECT_EQ(server.Start("no-port").code(), absl::StatusCode::kInvalidArgument);
  const int port = ::lvs::testing::FreePort();
  ASSERT_TRUE(server.Start(absl::StrCat("127.0.0.1:", port)).ok());
  httplib::Client http("127.0.0.1", port);
  auto res = http.Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  m.OnConnected(true);
  res = http.Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  res = http.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("Content-Type"),
            "text/plain; version=0.0.4; charset=utf-8");
  // The same exposition, up to the process metrics (open fds and CPU time
  // change between two scrapes).
  auto lvs_lines = [](const std::string& text) {
    return text.substr(0, text.find("# HELP process_"));
  };
  EXPECT_EQ(lvs_lines(res->body), lvs_lines(m.Render()));
  EXPECT_NE(res->body.find("\nprocess_open_fds "), std::string::npos);
  TrainerMetricsServer second(&m);
  EXPECT_EQ(second.Start(absl::StrCat("127.0.0.1:", port)).code(),
            absl::StatusCode::kUnavailable);
  server.Stop();
}

// GET `path` on 127.0.0.1:`port`: the HTTP status (0 when the connection
// fails) and the body.
int Get(int port, const std::string& path, std::string* body) {
  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(2);
  auto res = http.Get(path.c_str());
  if (!res) return 0;
  *body = res->body;
  return res->status;
}

TEST(TrainerMetricsProcessTest, LocalRunIsScrapedToItsLastStep) {
  const std::string dir = testing::TempDir("metrics-local");
  testing::WriteTinyCheckpoint(dir + "/init");
  const std::string records =
      testing::WriteSyntheticLatents(dir + "/data", 4, 5, 8, 8);
  nlohmann::json spec = {{"init_from", dir + "/init"},
                         {"learning_rate", 1e-3},
                         {"max_steps", 6},
                         {"checkpoint_interval", 3},
                         {"seed", 5},
                         {"tasks",
                          {{{"name", "V"},
                            {"records", {records}},
                            {"global_batch_size", 2},
                            {"micro_batch_size", 1},
                            {"max_frames", 8},
                            {"patch", "2x2"}}}}};
  std::ofstream(dir + "/spec.json") << spec.dump();
  const int port = ::lvs::testing::FreePort();
  auto p =
      Subprocess::Start({LVS_TRAINER_BIN, "--spec=" + dir + "/spec.json",
                         "--work-dir=" + dir + "/ckpt", "--name=it-trainer",
                         absl::StrCat("--metrics-listen=127.0.0.1:", port),
                         "--metrics-linger=60"},
                        dir + "/trainer.log");
  ASSERT_TRUE(p.ok()) << p.status();
  const std::string t = R"(trainer="it-trainer")";
  const absl::Time deadline = absl::Now() + absl::Seconds(180);
  std::string text;
  double last_steps = 0;
  while (absl::Now() < deadline) {
    if (Get(port, "/metrics", &text) == 200) {
      const double steps =
          Value(text, "lvs_trainer_steps_total{" + t + "}").value_or(-1);
      EXPECT_GE(steps, last_steps) << text;  // A counter never goes down.
      last_steps = steps;
      if (Value(text, "lvs_trainer_jobs_total{outcome=\"completed\"," + t +
                          "}") == 1) {
        break;
      }
    }
    ASSERT_TRUE(p->Running()) << ::lvs::testing::ReadFile(p->log_path());
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(Value(text, "lvs_trainer_steps_total{" + t + "}"), 6) << text;
  EXPECT_EQ(Value(text, "lvs_trainer_samples_total{" + t + "}"), 12);
  EXPECT_EQ(Value(text, "lvs_trainer_step{" + t + "}"), 6);
  EXPECT_EQ(Value(text, "lvs_trainer_total_steps{" + t + "}"), 6);
  EXPECT_EQ(Value(text, "lvs_trainer_busy{" + t + "}"), 0);
  EXPECT_EQ(Value(text, "lvs_trainer_checkpoints_total{" + t + "}"), 2);
  EXPECT_EQ(Value(text, "lvs_trainer_step_seconds_count{" + t + "}"), 6);
  EXPECT_EQ(Value(text, "lvs_trainer_learning_rate{" + t + "}"), 1e-3);
  const std::optional<double> loss =
      Value(text, "lvs_trainer_task_loss{task=\"V\"," + t + "}");
  ASSERT_TRUE(loss.has_value()) << text;
  EXPECT_TRUE(std::isfinite(*loss) && *loss > 0) << *loss;
  EXPECT_TRUE(std::filesystem::exists(CheckpointDir(dir + "/ckpt", 6)));
  std::string body;
  EXPECT_EQ(Get(port, "/healthz", &body), 200);
  std::string out;
  EXPECT_EQ(Promtool(text, dir, &out), 0) << out << "\n" << text;
}

TEST(TrainerMetricsProcessTest, ServiceModeReportsTheConnection) {
  ::lvs::testing::Cluster cluster("metrics-service");
  ASSERT_TRUE(cluster.StartServer().ok());
  const int port = ::lvs::testing::FreePort();
  auto p = Subprocess::Start(
      {LVS_TRAINER_BIN,
       absl::StrCat("--server=127.0.0.1:", cluster.worker_port()),
       "--name=svc-trainer", "--work-dir=" + cluster.dir() + "/ckpt",
       absl::StrCat("--metrics-listen=127.0.0.1:", port)},
      cluster.dir() + "/trainer.log");
  ASSERT_TRUE(p.ok()) << p.status();
  const std::string series = R"(lvs_trainer_connected{trainer="svc-trainer"})";
  auto wait_for = [&](double connected, int health) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    std::string text, body;
    while (absl::Now() < deadline) {
      if (Get(port, "/metrics", &text) == 200 &&
          Value(text, series) == connected &&
          Get(port, "/healthz", &body) == health) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  };
  EXPECT_TRUE(wait_for(1, 200)) << ::lvs::testing::ReadFile(p->log_path());
  cluster.server().Signal(SIGKILL);
  EXPECT_TRUE(wait_for(0, 503)) << ::lvs::testing::ReadFile(p->log_path());
  EXPECT_TRUE(p->Running());
}

}  // namespace
}  // namespace lvs::trainer
