// Tests of the `lvs` progress line rendering.
#include "client/progress_bar.h"

#include "gtest/gtest.h"

namespace lvs::client {
namespace {

TEST(ProgressBarTest, FormatsDurations) {
  EXPECT_EQ(FormatDuration(-1), "--:--");
  EXPECT_EQ(FormatDuration(0), "0:00");
  EXPECT_EQ(FormatDuration(75.4), "1:15");
  EXPECT_EQ(FormatDuration(3725), "1:02:05");
}

TEST(ProgressBarTest, FormatsBytes) {
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(3 * 1024 * 1024 + 200 * 1024), "3.2 MiB");
}

TEST(ProgressBarTest, ShowsQueuePosition) {
  ProgressState s;
  s.phase = ProgressState::Phase::kQueued;
  s.queue_position = 3;
  s.queue_ahead = 2;
  EXPECT_EQ(RenderProgress(s, 80), "queued: position 3 (2 ahead)");
}

TEST(ProgressBarTest, ShowsStepsRateAndEta) {
  ProgressState s;
  s.phase = ProgressState::Phase::kDenoising;
  s.step_index = 4;  // The fifth step.
  s.total_steps = 10;
  s.it_per_s = 2.5;
  s.eta_seconds = 2;
  const std::string line = RenderProgress(s, 60);
  EXPECT_LE(line.size(), 60u);
  EXPECT_NE(line.find(" 5/10 2.50 it/s ETA 0:02"), std::string::npos) << line;
  // Half of the bar is filled.
  const size_t open = line.find('['), close = line.find(']');
  ASSERT_NE(open, std::string::npos);
  const std::string bar = line.substr(open + 1, close - open - 1);
  EXPECT_EQ(std::count(bar.begin(), bar.end(), '#') * 2,
            static_cast<long>(bar.size()));
}

TEST(ProgressBarTest, ShowsFramesAndBytesWhenDecoding) {
  ProgressState s;
  s.phase = ProgressState::Phase::kDecoding;
  s.step_index = 9;
  s.total_steps = 10;
  s.frames_done = 8;
  s.frames_total = 16;
  s.bytes = 2048;
  const std::string line = RenderProgress(s, 100);
  EXPECT_NE(line.find("frames 8/16 2.0 KiB"), std::string::npos) << line;
}

TEST(ProgressBarTest, NeverExceedsTheWidth) {
  ProgressState s;
  s.phase = ProgressState::Phase::kStarted;
  s.worker = std::string(200, 'w');
  EXPECT_EQ(RenderProgress(s, 30).size(), 30u);
}

}  // namespace
}  // namespace lvs::client
