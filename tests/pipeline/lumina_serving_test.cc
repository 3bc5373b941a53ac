// lvs-server + lvs-worker --model=lumina (the tiny golden checkpoints, CPU)
// as real processes on loopback, driven by the `lvs generate` CLI: the MP4
// that comes back decodes with the planned frame count and size.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "model/media/video_decoder.h"
#include "tests/worker/cluster.h"
#include "tests/worker/subprocess.h"

namespace lvs::testing {
namespace {

const std::string kGolden = LVS_GOLDEN_DIR;

TEST(LuminaServingTest, CliGeneratesAVideoThroughTheLuminaWorker) {
  Cluster c("lumina");
  {
    const absl::Status st = c.StartServer();
    ASSERT_TRUE(st.ok()) << st;
  }
  // Cluster::StartWorker always runs the fake model, so the Lumina worker is
  // started here with the same flags.
  auto worker = Subprocess::Start(
      {WorkerBinary(), absl::StrCat("--server=127.0.0.1:", c.worker_port()),
       "--name=lumina0", "--model=lumina", "--dit=" + kGolden + "/dit",
       "--text-encoder=" + kGolden + "/text_encoder",
       "--vae=" + kGolden + "/vae", "--device=cpu",
       "--metrics-listen=127.0.0.1:0", "--x264-preset=ultrafast"},
      c.dir() + "/lumina0.log");
  ASSERT_TRUE(worker.ok()) << worker.status();
  ASSERT_TRUE(c.WorkerListed("lumina0", absl::Seconds(60)))
      << ReadFile(worker->log_path());

  const std::string out = c.dir() + "/lumina.mp4";
  std::string output;
  absl::StatusOr<int> rc =
      RunCommand({CliBinary(),
                  absl::StrCat("--server=", c.address()),
                  "generate",
                  "A red panda eats bamboo in a snowy forest.",
                  "-o",
                  out,
                  "--resolution",
                  "64x64",
                  "--frames",
                  "12",
                  "--fps",
                  "8",
                  "--sample-config",
                  "f24F96R960",
                  "--steps",
                  "4",
                  "--seed",
                  "7",
                  "--precision",
                  "fp32"},
                 absl::Seconds(120), &output);
  ASSERT_TRUE(rc.ok()) << rc.status();
  ASSERT_EQ(*rc, 0) << output << "\nworker log:\n"
                    << ReadFile(worker->log_path());
  // 12 frames -> 3 latent frames -> 4 * 3 - 3 = 9 frames.
  auto decoder = media::VideoDecoder::OpenFile(out);
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  const media::VideoStreamInfo& info = (*decoder)->info();
  EXPECT_EQ(info.codec, "h264");
  EXPECT_EQ(info.width, 64);
  EXPECT_EQ(info.height, 64);
  EXPECT_EQ(info.frames, 9);
  EXPECT_EQ(info.fps_num / std::max(info.fps_den, 1), 8);
  EXPECT_TRUE(absl::StrContains(output, "3/3")) << output;  // Steps.
}

}  // namespace
}  // namespace lvs::testing
