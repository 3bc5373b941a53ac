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

// The explicit `sample` config reaches the pipeline (the worker used to drop
// it and run the default): written like f24F96R960 it gives that config's
// video byte for byte; with another guidance scale, another video. Also the
// model id alias "lumina" is admitted (it used to wait forever).
TEST(LuminaServingTest, ExplicitSampleConfigReachesThePipeline) {
  Cluster c("lumina-sample");
  ASSERT_TRUE(c.StartServer().ok());
  auto worker = Subprocess::Start(
      {WorkerBinary(), absl::StrCat("--server=127.0.0.1:", c.worker_port()),
       "--name=lumina0", "--model=lumina", "--dit=" + kGolden + "/dit",
       "--text-encoder=" + kGolden + "/text_encoder",
       "--vae=" + kGolden + "/vae", "--device=cpu", "--x264-preset=ultrafast"},
      c.dir() + "/lumina0.log");
  ASSERT_TRUE(worker.ok()) << worker.status();
  ASSERT_TRUE(c.WorkerListed("lumina0", absl::Seconds(60)))
      << ReadFile(worker->log_path());

  auto run = [&](const lumina::video::v1::GenerateVideoRequest& r) {
    absl::StatusOr<lumina::video::v1::VideoJob> job = c.Create(r);
    EXPECT_TRUE(job.ok()) << job.status();
    if (!job.ok()) return std::string();
    absl::StatusOr<lumina::video::v1::VideoJob> done =
        c.WaitFinished(job->name(), absl::Seconds(120));
    EXPECT_TRUE(done.ok() && done->state() == lumina::video::v1::SUCCEEDED)
        << (done.ok() ? done->DebugString() : done.status().ToString())
        << ReadFile(worker->log_path());
    absl::StatusOr<std::string> mp4 = c.Watch(job->name(), 0);
    EXPECT_TRUE(mp4.ok()) << mp4.status();
    return mp4.ok() ? *mp4 : std::string();
  };
  lumina::video::v1::GenerateVideoRequest base;
  base.set_prompt("A red panda eats bamboo in a snowy forest.");
  base.set_width(64);
  base.set_height(64);
  base.set_frames(12);
  base.set_fps(8);
  base.set_steps(4);
  base.set_seed(7);
  base.set_precision(lumina::video::v1::PRECISION_FP32);
  base.set_model("lumina");  // The alias.

  lumina::video::v1::GenerateVideoRequest named = base;
  named.set_sample_config("f24F96R960");
  // f24F96R960 (sample_config.cc): P 1x2, ts 24, renorm 2, cfg (20,(0.2,0)),
  // motion 6, negMotion (2,(0.05,6)).
  lumina::video::v1::GenerateVideoRequest explicit_config = base;
  auto* s = explicit_config.mutable_sample();
  s->mutable_patch()->set_initial("1x2");
  s->set_time_shift(24);
  s->set_renorm_cfg(2);
  s->mutable_cfg_scale()->set_initial(20);
  auto* cfg = s->mutable_cfg_scale()->add_switches();
  cfg->set_from_t(0.2f);
  cfg->set_value(0);
  s->mutable_motion_score()->set_initial(6);
  s->mutable_negative_motion_score()->set_initial(2);
  auto* neg = s->mutable_negative_motion_score()->add_switches();
  neg->set_from_t(0.05f);
  neg->set_value(6);
  lumina::video::v1::GenerateVideoRequest other = explicit_config;
  other.mutable_sample()->mutable_cfg_scale()->set_initial(3);

  const std::string a = run(named);
  const std::string b = run(explicit_config);
  const std::string d = run(other);
  ASSERT_GT(a.size(), 100u);
  EXPECT_TRUE(a == b) << "explicit config equal to f24F96R960 gave " << b.size()
                      << " bytes vs " << a.size();
  EXPECT_FALSE(a == d) << "another guidance scale gave the same video";
}

}  // namespace
}  // namespace lvs::testing
