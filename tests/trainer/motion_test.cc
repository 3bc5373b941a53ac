// lvs-motion: frame sampling as the reference, the score ranks still <
// slow < fast clips (in memory and through MP4 files), and the tool writes
// the score into every record.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "tests/trainer/synthetic_clips.h"
#include "tools/lvs_extract/item_list.h"
#include "tools/lvs_motion/motion_score.h"

namespace lvs::motion {
namespace {

std::vector<media::RgbFrame> Sampled(double speed, double fps, int frames) {
  MotionOptions o;
  std::vector<media::RgbFrame> out;
  for (int64_t i : MotionFrameIndices(fps, frames, o)) {
    out.push_back(trainer::testing::ShapesFrame(96, 64, i, speed));
  }
  return out;
}

TEST(MotionFrameIndicesTest, EveryHalfSecondUpToFourSeconds) {
  MotionOptions o;
  EXPECT_EQ(MotionFrameIndices(24, 200, o),
            (std::vector<int64_t>{0, 12, 24, 36, 48, 60, 72, 84, 96}));
  EXPECT_EQ(MotionFrameIndices(30, 40, o), (std::vector<int64_t>{0, 15, 30}));
  EXPECT_EQ(MotionFrameIndices(8, 17, o),
            (std::vector<int64_t>{0, 4, 8, 12, 16}));
}

TEST(MotionScoreTest, StillIsBelowSlowIsBelowFast) {
  for (FlowMethod m : {FlowMethod::kDis, FlowMethod::kFarneback}) {
    MotionOptions o;
    o.method = m;
    const double still = MotionScore(Sampled(0, 8, 33), o).value();
    const double slow = MotionScore(Sampled(0.5, 8, 33), o).value();
    const double fast = MotionScore(Sampled(2, 8, 33), o).value();
    EXPECT_LT(still, 0.05);
    EXPECT_LT(still, slow);
    EXPECT_LT(slow, fast);
  }
}

TEST(MotionScoreTest, NeedsTwoFrames) {
  EXPECT_FALSE(MotionScore(Sampled(1, 8, 1), {}).ok());
}

TEST(LvsMotionTest, ToolRanksAStillClipBelowAMovingOne) {
  const std::string dir =
      absl::StrCat(LVS_BINARY_DIR, "/tests/trainer/tmp/motion-", ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(
      trainer::testing::WriteShapesClip(dir + "/still.mp4", 96, 64, 24, 8, 0)
          .ok());
  ASSERT_TRUE(
      trainer::testing::WriteShapesClip(dir + "/moving.mp4", 96, 64, 24, 8, 1.5)
          .ok());
  // Portrait clips are transposed to landscape first.
  ASSERT_TRUE(trainer::testing::WriteShapesClip(dir + "/portrait.mp4", 64, 96,
                                                24, 8, 1.5)
                  .ok());
  {
    std::ofstream in(dir + "/items.jsonl");
    in << R"({"path": "still.mp4", "prompt": "a still scene"})"
       << "\n"
       << R"({"path": "moving.mp4", "prompt": "shapes moving", "id": 7})"
       << "\n"
       << R"({"path": "portrait.mp4", "prompt": "portrait"})"
       << "\n"
       << R"({"path": "missing.mp4", "prompt": "gone"})"
       << "\n";
  }
  const std::string cmd = absl::StrCat(
      LVS_BINARY_DIR, "/tools/lvs_motion/lvs-motion --records=", dir,
      "/items.jsonl --out=", dir, "/scored.jsonl 2>", dir, "/log.txt");
  EXPECT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 1);  // One failure.
  auto out = tools::ReadItems(dir + "/scored.jsonl").value();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1]["id"], 7);  // Original fields kept.
  const double still = out[0]["unimatch_flow"].get<double>();
  const double moving = out[1]["unimatch_flow"].get<double>();
  const double portrait = out[2]["unimatch_flow"].get<double>();
  EXPECT_LT(still, moving);
  EXPECT_GT(portrait, still);
  std::ifstream log(dir + "/log.txt");
  const std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(text.find("summary: 3 done, 0 skipped, 1 failed of 4"),
            std::string::npos)
      << text;
  // A rerun keeps the scores it has and only retries the failure.
  EXPECT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 1);
  std::ifstream log2(dir + "/log.txt");
  const std::string text2((std::istreambuf_iterator<char>(log2)), {});
  EXPECT_NE(text2.find("summary: 0 done, 3 skipped, 1 failed of 4"),
            std::string::npos)
      << text2;
}

}  // namespace
}  // namespace lvs::motion
