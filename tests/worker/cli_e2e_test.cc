// The lvs CLI against real lvs-server and lvs-worker processes (fake model)
// on loopback: generate with its progress bar to a playable MP4, jobs
// list/get/cancel/delete, workers and workers reload.
#include <sys/wait.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/worker/cluster.h"

namespace lvs::testing {
namespace {

TEST(CliE2eTest, WritesAPlayableMp4) {
  Cluster c("cli");
  {
    const absl::Status st = c.StartServer();
    ASSERT_TRUE(st.ok()) << st;
  }
  {
    const absl::Status st = c.StartWorker("w1", {"--fake-step-ms=5"});
    ASSERT_TRUE(st.ok()) << st;
  }
  const std::string out = absl::StrCat(c.dir(), "/cli.mp4");
  std::string output;
  absl::StatusOr<int> rc =
      RunCommand({CliBinary(),    absl::StrCat("--server=", c.address()),
                  "generate",     "a red fox in the snow",
                  "-o",           out,
                  "--resolution", "96x64",
                  "--frames",     "13",
                  "--fps",        "12",
                  "--steps",      "5",
                  "--seed",       "7",
                  "--label",      "team=test",
                  "--priority",   "high"},
                 absl::Seconds(60), &output);
  ASSERT_TRUE(rc.ok());
  ASSERT_EQ(*rc, 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "13 frames 96x64 @ 12 fps")) << output;
  // Progress line: 5 grid points are 4 denoising steps.
  EXPECT_TRUE(absl::StrContains(output, " 4/4 ")) << output;
  EXPECT_FALSE(absl::StrContains(output, "5/5")) << output;
  std::string probe;
  rc = RunCommand(
      {"/usr/bin/ffprobe", "-v", "error", "-count_frames", "-select_streams",
       "v:0", "-show_entries", "stream=codec_name,width,height,nb_read_frames",
       "-of", "csv=p=0", out},
      absl::Seconds(30), &probe);
  ASSERT_TRUE(rc.ok());
  ASSERT_EQ(*rc, 0) << probe;
  EXPECT_EQ(probe, "h264,96,64,13\n");

  // `lvs jobs list` shows it; `lvs workers` lists the worker.
  rc = RunCommand(
      {CliBinary(), absl::StrCat("--server=", c.address()), "jobs", "list"},
      absl::Seconds(20), &output);
  ASSERT_EQ(*rc, 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "SUCCEEDED")) << output;
  rc = RunCommand(
      {CliBinary(), "workers", absl::StrCat("--server=", c.address())},
      absl::Seconds(20), &output);
  ASSERT_EQ(*rc, 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "w1")) << output;
}

// `lvs workers reload` swaps a running worker's weights and reports each
// worker's outcome; a bad checkpoint leaves the worker as it was.
TEST(CliE2eTest, ReloadsWorkers) {
  Cluster c("cli-reload");
  ASSERT_TRUE(c.StartServer().ok());
  ASSERT_TRUE(c.StartWorker("w1", {"--fake-step-ms=5"}).ok());
  const std::string ckpt = absl::StrCat(c.dir(), "/ckpt");
  std::filesystem::create_directories(ckpt);
  std::string output;
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(),
                {CliBinary(), absl::StrCat("--server=", c.address()), "workers",
                 "reload"});
    absl::StatusOr<int> rc = RunCommand(args, absl::Seconds(30), &output);
    return rc.ok() && WIFEXITED(*rc) ? WEXITSTATUS(*rc) : -1;
  };
  ASSERT_EQ(cli({"--checkpoint", ckpt, "--ema"}), 0) << output;
  EXPECT_TRUE(
      absl::StrContains(output, absl::StrCat("reloaded: ", ckpt, " (ema)")))
      << output;
  EXPECT_TRUE(absl::StartsWith(output, "w1 ")) << output;
  EXPECT_EQ(cli({"--worker", "w1", "--checkpoint", ckpt + "/missing"}), 1)
      << output;
  EXPECT_TRUE(absl::StrContains(output, "failed:")) << output;
  EXPECT_EQ(cli({"--checkpoint", ckpt, "--training-job", "x"}), 2) << output;
  EXPECT_EQ(cli({}), 2) << output;
  // `lvs workers` alone still lists.
  absl::StatusOr<int> rc = RunCommand(
      {CliBinary(), "workers", absl::StrCat("--server=", c.address())},
      absl::Seconds(20), &output);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "w1")) << output;
}

TEST(CliE2eTest, JobsGetCancelDelete) {
  Cluster c("cli-jobs");
  absl::Status st = c.StartServer();
  ASSERT_TRUE(st.ok()) << st;
  // No worker: the job stays queued until cancelled (admitted against the
  // server's catalogue: 8 frames are 2 latent frames of lumina-video).
  std::string output;
  absl::StatusOr<int> rc =
      RunCommand({CliBinary(), absl::StrCat("--server=", c.address()),
                  "generate", "a quiet harbour", "--detach", "--resolution",
                  "64x64", "--frames", "8", "--request-id", "cli-jobs-1"},
                 absl::Seconds(20), &output);
  ASSERT_EQ(*rc, 0) << output;
  const std::string name(absl::StripTrailingAsciiWhitespace(output));
  ASSERT_TRUE(absl::StartsWith(name, "jobs/")) << output;
  const std::string id = name.substr(5);
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(),
                {CliBinary(), absl::StrCat("--server=", c.address()), "jobs"});
    absl::StatusOr<int> r = RunCommand(args, absl::Seconds(20), &output);
    return r.ok() && WIFEXITED(*r) ? WEXITSTATUS(*r) : -1;
  };
  EXPECT_EQ(cli({"get", id}), 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "\"state\": \"QUEUED\"")) << output;
  EXPECT_TRUE(absl::StrContains(output, "a quiet harbour")) << output;
  EXPECT_EQ(cli({"list", "--state", "QUEUED"}), 0) << output;
  EXPECT_TRUE(absl::StrContains(output, name)) << output;
  EXPECT_EQ(cli({"delete", name}), 1) << output;  // Still queued.
  EXPECT_TRUE(absl::StrContains(output, "FAILED_PRECONDITION")) << output;
  EXPECT_EQ(cli({"cancel", name}), 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "CANCELLED")) << output;
  EXPECT_EQ(cli({"delete", id}), 0) << output;
  EXPECT_EQ(cli({"get", id}), 1) << output;
  EXPECT_TRUE(absl::StrContains(output, "NOT_FOUND")) << output;
}

}  // namespace
}  // namespace lvs::testing
