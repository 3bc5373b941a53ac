// What the README and `--help` promise, against real lvs-server, lvs-worker
// (fake model) and lvs processes on loopback: the serving example as
// written, admission against the workers' published limits, unique worker
// names, one server per data dir, idempotency keys, usage errors.
#include <sys/wait.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "tests/worker/cluster.h"
#include "tests/worker/subprocess.h"

namespace lvs::testing {
namespace {

namespace v1 = ::lumina::video::v1;

// Runs the CLI; returns its exit code (-1 when it did not exit).
int Cli(const Cluster& c, std::vector<std::string> args, std::string* output,
        absl::Duration timeout = absl::Seconds(60)) {
  args.insert(args.begin(), {CliBinary(), "--server=" + c.address()});
  absl::StatusOr<int> rc = RunCommand(args, timeout, output);
  return rc.ok() && WIFEXITED(*rc) ? WEXITSTATUS(*rc) : -1;
}

// README "Serving": `lvs generate "a red fox in the snow" -o fox.mp4` with
// no other flag used to fail (width, height, frames "required"); absent
// fields now take the serving model's defaults.
TEST(ServingCorrectnessTest, ReadmeServingExampleWorksAsWritten) {
  Cluster c("readme-example");
  ASSERT_TRUE(c.StartServer().ok());
  ASSERT_TRUE(c.StartWorker("gpu0", {"--fake-step-ms=2"}).ok());
  const std::string out = c.dir() + "/fox.mp4";
  std::string output;
  ASSERT_EQ(Cli(c, {"generate", "a red fox in the snow", "-o", out}, &output),
            0)
      << output;
  // The fake model's defaults: 16 frames of 256x160 at 16 fps.
  EXPECT_TRUE(absl::StrContains(output, "16 frames 256x160 @ 16 fps"))
      << output;
  absl::StatusOr<int> frames = CountFrames(ReadFile(out));
  ASSERT_TRUE(frames.ok()) << frames.status();
  EXPECT_EQ(*frames, 16);
  // `lvs models` lists what the worker published; `lvs workers` the model.
  ASSERT_EQ(Cli(c, {"models"}, &output), 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "fake")) << output;
  EXPECT_TRUE(absl::StrContains(output, "--resolution 256x160")) << output;
  ASSERT_EQ(Cli(c, {"workers"}, &output), 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "MODEL")) << output;
  EXPECT_TRUE(absl::StrContains(output, "fake")) << output;
}

// `--model lumina` with no worker serving it used to wait in the queue
// forever; requests no worker can serve are refused at admission, naming
// the flag.
TEST(ServingCorrectnessTest, UnservableRequestsAreRefusedAtAdmission) {
  Cluster c("admission");
  ASSERT_TRUE(c.StartServer().ok());
  ASSERT_TRUE(c.StartWorker("w1", {"--fake-step-ms=2"}).ok());
  std::string output;
  EXPECT_EQ(
      Cli(c,
          {"generate", "a fox", "-o", c.dir() + "/x.mp4", "--model", "lumina"},
          &output, absl::Seconds(20)),
      1)
      << output;
  EXPECT_TRUE(absl::StrContains(output, "--model")) << output;
  EXPECT_TRUE(absl::StrContains(output, "fake")) << output;
  // Beyond the worker's limits: refused with BadRequest, never queued.
  v1::GenerateVideoRequest r = SmallRequest();
  r.set_width(4096);
  absl::StatusOr<v1::VideoJob> job = c.Create(r);
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(job.status().message(), "video.width"))
      << job.status();
  ASSERT_EQ(Cli(c, {"jobs", "list"}, &output), 0) << output;
  EXPECT_FALSE(absl::StrContains(output, "QUEUED")) << output;
}

// A second worker under a live name used to replace the first silently; it
// is refused and exits with a clear message, the first keeps serving.
TEST(ServingCorrectnessTest, SecondWorkerWithTheSameNameExits) {
  Cluster c("names");
  ASSERT_TRUE(c.StartServer().ok());
  ASSERT_TRUE(c.StartWorker("w1", {"--fake-step-ms=2"}).ok());
  auto second = Subprocess::Start(
      {WorkerBinary(), absl::StrCat("--server=127.0.0.1:", c.worker_port()),
       "--name=w1", "--model=fake"},
      c.dir() + "/w1-second.log");
  ASSERT_TRUE(second.ok()) << second.status();
  const std::optional<int> status = second->Wait(absl::Seconds(30));
  ASSERT_TRUE(status.has_value()) << ReadFile(second->log_path());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0);
  const std::string log = ReadFile(second->log_path());
  EXPECT_TRUE(absl::StrContains(log, "ALREADY_EXISTS")) << log;
  EXPECT_TRUE(absl::StrContains(log, "--name")) << log;
  EXPECT_TRUE(c.worker("w1").Running());
  absl::StatusOr<v1::VideoJob> job = c.Create(SmallRequest());
  ASSERT_TRUE(job.ok()) << job.status();
  absl::StatusOr<v1::VideoJob> done =
      c.WaitFinished(job->name(), absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), v1::SUCCEEDED);
  EXPECT_EQ(done->worker(), "w1");
}

// Two servers on one --data-dir used to run the same jobs twice.
TEST(ServingCorrectnessTest, SecondServerOnTheSameDataDirExits) {
  Cluster c("datadir");
  ASSERT_TRUE(c.StartServer().ok());
  std::string output;
  absl::StatusOr<int> rc = RunCommand(
      {ServerBinary(), absl::StrCat("--listen=127.0.0.1:", FreePort()),
       absl::StrCat("--worker-listen=127.0.0.1:", FreePort()),
       "--metrics-listen=", "--data-dir=" + c.dir() + "/data"},
      absl::Seconds(30), &output);
  ASSERT_TRUE(rc.ok());
  EXPECT_TRUE(WIFEXITED(*rc) && WEXITSTATUS(*rc) != 0) << output;
  EXPECT_TRUE(absl::StrContains(
      output, absl::StrCat("in use by pid ", c.server().pid())))
      << output;
}

// AIP-155: the same key with a different request is refused, naming the
// key, instead of answering with the first request's job.
TEST(ServingCorrectnessTest, RequestIdNamesOneRequest) {
  Cluster c("idempotency");
  ASSERT_TRUE(c.StartServer().ok());
  ASSERT_TRUE(c.StartWorker("w1", {"--fake-step-ms=2"}).ok());
  v1::GenerateVideoRequest a = SmallRequest();
  a.set_seed(0);  // The server picks one; a repeat still matches.
  absl::StatusOr<v1::VideoJob> first = c.Create(a, "key-1");
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<v1::VideoJob> again = c.Create(a, "key-1");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->name(), first->name());
  v1::GenerateVideoRequest b = a;
  b.set_prompt("another prompt");
  absl::StatusOr<v1::VideoJob> other = c.Create(b, "key-1");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(absl::StrContains(other.status().message(), "key-1"))
      << other.status();
  // A retried `lvs generate --request-id` (no --detach) follows the same job
  // instead of running it again (the key used to be ignored).
  auto job_of = [](const std::string& out) {
    const size_t at = out.find("jobs/");
    return at == std::string::npos
               ? std::string()
               : out.substr(at, out.find_first_of(",)", at) - at);
  };
  std::string out1, out2;
  ASSERT_EQ(Cli(c,
                {"generate", "a retried fox", "-o", c.dir() + "/r1.mp4",
                 "--request-id", "key-2", "--seed", "3"},
                &out1),
            0)
      << out1;
  ASSERT_EQ(Cli(c,
                {"generate", "a retried fox", "-o", c.dir() + "/r2.mp4",
                 "--request-id", "key-2", "--seed", "3"},
                &out2),
            0)
      << out2;
  EXPECT_FALSE(job_of(out1).empty()) << out1;
  EXPECT_EQ(job_of(out1), job_of(out2)) << out1 << out2;
  // `lvs generate --request-id` without --detach reuses the key too.
  std::string output;
  EXPECT_EQ(Cli(c,
                {"generate", "another prompt", "-o", c.dir() + "/k.mp4",
                 "--request-id", "key-1"},
                &output),
            1)
      << output;
  EXPECT_TRUE(absl::StrContains(output, "key-1")) << output;
}

// Usage errors exit 2 (CLI11 used to exit 105-114); --version works.
TEST(ServingCorrectnessTest, UsageErrorsExitTwoAndVersionPrints) {
  std::string output;
  absl::StatusOr<int> rc =
      RunCommand({CliBinary(), "--version"}, absl::Seconds(10), &output);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(WEXITSTATUS(*rc), 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "lvs ")) << output;
  rc = RunCommand({CliBinary(), "generate", "x", "--no-such-flag"},
                  absl::Seconds(10), &output);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(WEXITSTATUS(*rc), 2) << output;
  // Invalid UTF-8 in a prompt: named, exit 2 (the server used to answer
  // UNIMPLEMENTED with no message).
  rc = RunCommand({CliBinary(), "--server=127.0.0.1:1", "generate",
                   "a \xff fox", "-o", "/tmp/unused.mp4"},
                  absl::Seconds(10), &output);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(WEXITSTATUS(*rc), 2) << output;
  EXPECT_TRUE(absl::StrContains(output, "UTF-8")) << output;
  // `jobs list` prints "(more: --page-token X)": the flag exists.
  rc = RunCommand({CliBinary(), "jobs", "list", "--help"}, absl::Seconds(10),
                  &output);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(WEXITSTATUS(*rc), 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "--page-token")) << output;
  rc = RunCommand({CliBinary(), "generate", "--help"}, absl::Seconds(10),
                  &output);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(WEXITSTATUS(*rc), 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "default")) << output;
}

// `lvs jobs list` printed "(more: --page-token X)" for a flag it did not
// have; the printed command fetches the next page.
TEST(ServingCorrectnessTest, JobsListPagesWithThePrintedToken) {
  Cluster c("pages");
  ASSERT_TRUE(c.StartServer().ok());
  ASSERT_TRUE(c.StartWorker("w1", {"--fake-step-ms=2"}).ok());
  std::set<std::string> names;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<v1::VideoJob> job = c.Create(SmallRequest());
    ASSERT_TRUE(job.ok()) << job.status();
    names.insert(job->name());
  }
  std::string first, second;
  ASSERT_EQ(Cli(c, {"jobs", "list", "--page-size", "1"}, &first), 0) << first;
  const std::string marker = "(more: --page-token ";
  const size_t at = first.find(marker);
  ASSERT_NE(at, std::string::npos) << first;
  const size_t start = at + marker.size();
  const std::string token =
      first.substr(start, first.find_first_of(",)", start) - start);
  ASSERT_EQ(Cli(c, {"jobs", "list", "--page-size", "1", "--page-token", token},
                &second),
            0)
      << second;
  int first_has = 0, second_has = 0;
  for (const std::string& n : names) {
    first_has += absl::StrContains(first, n);
    second_has += absl::StrContains(second, n);
  }
  EXPECT_EQ(first_has, 1) << first;
  EXPECT_EQ(second_has, 1) << second;
}

// Guidance scale and motion score can be set from the CLI (they could not):
// they become an explicit sample config based on the named one.
TEST(ServingCorrectnessTest, GuidanceScaleAndMotionScoreFlags) {
  Cluster c("guidance");
  ASSERT_TRUE(c.StartServer().ok());
  ASSERT_TRUE(c.StartWorker("w1", {"--fake-step-ms=2"}).ok());
  std::string output;
  ASSERT_EQ(Cli(c,
                {"generate", "a fox", "--detach", "--guidance-scale", "7.5",
                 "--motion-score", "3", "--sample-config", "f24F96R960"},
                &output),
            0)
      << output;
  const std::string name(absl::StripTrailingAsciiWhitespace(output));
  absl::StatusOr<v1::VideoJob> job = c.Get(name);
  ASSERT_TRUE(job.ok()) << job.status();
  const v1::SampleConfig& s = job->request().sample();
  EXPECT_EQ(job->request().sample_config(), "");
  EXPECT_FLOAT_EQ(s.cfg_scale().initial(), 7.5f);
  ASSERT_EQ(s.cfg_scale().switches_size(), 1);  // (0.2, 0) kept.
  EXPECT_FLOAT_EQ(s.motion_score().initial(), 3);
  EXPECT_EQ(s.patch().initial(), "1x2");
  EXPECT_FLOAT_EQ(s.time_shift(), 24);
}

// Smaller items of the serving tools: lvs-server --help lists its flags, a
// worker takes `--metrics-listen=` (off) and names a wrong --server port,
// needs --model without checkpoints, keeps libx264's banner out of its log;
// `lvs queue` and `lvs workers drain` exist.
TEST(ServingCorrectnessTest, ServerAndWorkerFlagsAndAdminCommands) {
  std::string output;
  absl::StatusOr<int> rc =
      RunCommand({ServerBinary(), "--help"}, absl::Seconds(10), &output);
  ASSERT_TRUE(rc.ok());
  EXPECT_TRUE(absl::StrContains(output, "--data-dir")) << output;
  EXPECT_FALSE(absl::StrContains(output, "No flags matched")) << output;
  rc = RunCommand({WorkerBinary(), "--server=127.0.0.1:1"}, absl::Seconds(10),
                  &output);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(WEXITSTATUS(*rc), 2) << output;
  EXPECT_TRUE(absl::StrContains(output, "--model")) << output;

  Cluster c("flags");
  ASSERT_TRUE(c.StartServer().ok());
  // `--metrics-listen=` (documented as off) used to be rejected.
  ASSERT_TRUE(
      c.StartWorker("w1", {"--fake-step-ms=2", "--metrics-listen="}).ok());
  absl::StatusOr<v1::VideoJob> job = c.Create(SmallRequest());
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(c.WaitFinished(job->name(), absl::Seconds(60)).ok());
  EXPECT_FALSE(
      absl::StrContains(ReadFile(c.worker("w1").log_path()), "libx264 @"))
      << ReadFile(c.worker("w1").log_path());
  // A worker dialling the client port says so.
  auto lost = Subprocess::Start({WorkerBinary(), "--server=" + c.address(),
                                 "--name=lost", "--model=fake"},
                                c.dir() + "/lost.log");
  ASSERT_TRUE(lost.ok());
  bool named = false;
  for (int i = 0; i < 300 && !named; ++i) {  // 30 s: start-up under load.
    absl::SleepFor(absl::Milliseconds(100));
    named = absl::StrContains(ReadFile(lost->log_path()), "worker port");
  }
  EXPECT_TRUE(named) << ReadFile(lost->log_path());

  ASSERT_EQ(Cli(c, {"queue"}, &output), 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "workers: 1 idle")) << output;
  ASSERT_EQ(Cli(c, {"workers", "drain", "w1"}, &output), 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "w1 draining")) << output;
  const std::optional<int> status = c.worker("w1").Wait(absl::Seconds(20));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

// `lvs train template` prints a spec in the short dialect ("bf16",
// "video") that `lvs train submit` accepts as it is (it wanted
// PRECISION_BF16 / MEDIA_TYPE_VIDEO and a task_ratio before).
TEST(ServingCorrectnessTest, TrainTemplateSubmitsAsPrinted) {
  Cluster c("train-template");
  ASSERT_TRUE(c.StartServer().ok());
  std::string spec;
  ASSERT_EQ(Cli(c, {"train", "template"}, &spec), 0) << spec;
  EXPECT_TRUE(absl::StrContains(spec, "\"media_type\": \"video\"")) << spec;
  absl::StrReplaceAll({{"      \"task_ratio\": 1\n", ""},
                       {"\"time_shift\": 6.0,", "\"time_shift\": 6.0"}},
                      &spec);
  const std::string path = c.dir() + "/job.json";
  {
    std::ofstream out(path);
    out << spec;
  }
  std::string output;
  EXPECT_EQ(Cli(c, {"train", "submit", "--spec", path}, &output), 0)
      << output << spec;
  EXPECT_TRUE(absl::StrContains(output, "trainingJobs/")) << output;
}

// The README's fenced block after `heading` ("" when absent).
std::string ReadmeBlock(const std::string& heading, const std::string& fence) {
  const std::string readme =
      ReadFile(std::string(LVS_SOURCE_DIR) + "/README.md");
  const size_t at = readme.find(heading);
  if (at == std::string::npos) return "";
  const size_t open = readme.find(fence, at);
  const size_t body = readme.find('\n', open) + 1;
  const size_t close = readme.find("```", body);
  return readme.substr(body, close - body);
}

// The README's example training spec is what `lvs train template` prints.
TEST(ServingCorrectnessTest, ReadmeSpecIsTheTemplate) {
  const std::string readme_spec = ReadmeBlock("One spec dialect", "```json");
  ASSERT_FALSE(readme_spec.empty());
  std::string printed;
  absl::StatusOr<int> rc = RunCommand({CliBinary(), "train", "template"},
                                      absl::Seconds(10), &printed);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(printed, readme_spec);
}

}  // namespace
}  // namespace lvs::testing
