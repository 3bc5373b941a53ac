// The Python example client (client/python/lvs_client.py, stubs generated
// with grpc_tools at build time) against real server and worker processes.
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/worker/cluster.h"

namespace lvs::testing {
namespace {

std::vector<std::string> Python(const Cluster& c) {
  return {"/usr/bin/python3", LVS_SOURCE_DIR "/client/python/lvs_client.py",
          absl::StrCat("--server=", c.address()),
          "--stubs=" LVS_PYTHON_STUBS_DIR};
}

TEST(PythonClientTest, GeneratesAVideoAndReportsBadFields) {
  Cluster c("python");
  absl::Status st = c.StartServer();
  ASSERT_TRUE(st.ok()) << st;
  st = c.StartWorker("w1", {"--fake-step-ms=5"});
  ASSERT_TRUE(st.ok()) << st;

  const std::string out = absl::StrCat(c.dir(), "/py.mp4");
  std::vector<std::string> argv = Python(c);
  argv.insert(argv.end(),
              {"generate", "a sailing boat", "-o", out, "--resolution", "64x96",
               "--frames", "9", "--fps", "8", "--steps", "4", "--seed", "3"});
  std::string output;
  absl::StatusOr<int> rc = RunCommand(argv, absl::Seconds(60), &output);
  ASSERT_TRUE(rc.ok());
  ASSERT_EQ(*rc, 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "9 frames 64x96 @ 8 fps")) << output;
  absl::StatusOr<int> frames = CountFrames(ReadFile(out));
  ASSERT_TRUE(frames.ok()) << frames.status();
  EXPECT_EQ(*frames, 9);

  argv = Python(c);
  argv.insert(argv.end(), {"jobs"});
  rc = RunCommand(argv, absl::Seconds(30), &output);
  ASSERT_EQ(*rc, 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "SUCCEEDED a sailing boat")) << output;

  argv = Python(c);
  argv.insert(argv.end(), {"generate", "x", "-o", out + "2", "--resolution",
                           "65x96", "--frames", "-3"});
  rc = RunCommand(argv, absl::Seconds(30), &output);
  EXPECT_NE(*rc, 0);
  EXPECT_TRUE(absl::StrContains(output, "INVALID_ARGUMENT")) << output;
  EXPECT_TRUE(absl::StrContains(output, "bad field width")) << output;
  EXPECT_TRUE(absl::StrContains(output, "bad field frames")) << output;
}

}  // namespace
}  // namespace lvs::testing
