// Unit tests of the fake VideoModel: plan defaults, determinism, step events,
// cancellation within one step and the configured failure.
#include "worker/fake_model.h"

#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace lvs::worker {
namespace {

// Records every sink callback.
class RecordingSink : public ProgressSink {
 public:
  void OnPlan(const VideoPlan& plan) override { plan_ = plan; }
  void OnTextEncoded(int, double) override { ++text_encoded_; }
  void OnStep(const StepEvent& step) override { steps_.push_back(step); }
  absl::Status OnFrames(const FrameBatch& frames) override {
    EXPECT_EQ(frames.first_frame, frames_seen_);
    frames_seen_ += frames.count;
    rgb_.insert(rgb_.end(), frames.rgb.begin(), frames.rgb.end());
    return absl::OkStatus();
  }
  void OnDecoded(int done, int total) override { decoded_.push_back(done); }

  VideoPlan plan_;
  int text_encoded_ = 0;
  std::vector<StepEvent> steps_;
  int frames_seen_ = 0;
  std::vector<uint8_t> rgb_;
  std::vector<int> decoded_;
};

FakeVideoModelOptions FastOptions() {
  FakeVideoModelOptions o;
  o.step_time = absl::Milliseconds(1);
  o.chunk_frames = 4;
  return o;
}

TEST(FakeVideoModelTest, ReportsEveryStageAndFrame) {
  FakeVideoModel model(FastOptions());
  GenerateRequest req;
  req.width = 64;
  req.height = 32;
  req.frames = 10;
  req.grid_points = 6;  // 5 denoising steps.
  req.seed = 7;
  RecordingSink sink;
  CancelToken cancel;
  ASSERT_TRUE(model.Generate(req, sink, cancel).ok());
  EXPECT_EQ(sink.plan_.width, 64);
  EXPECT_EQ(sink.plan_.frames, 10);
  EXPECT_EQ(sink.text_encoded_, 1);
  ASSERT_EQ(sink.steps_.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(sink.steps_[i].index, i);
    EXPECT_EQ(sink.steps_[i].denoise_steps, 5);
  }
  EXPECT_EQ(sink.decoded_, (std::vector<int>{4, 8, 10}));
  ASSERT_EQ(sink.rgb_.size(), 10u * 64 * 32 * 3);
  std::vector<uint8_t> frame(64 * 32 * 3);
  FakeVideoModel::RenderFrame(7, 9, 64, 32, frame.data());
  EXPECT_TRUE(
      std::equal(frame.begin(), frame.end(), sink.rgb_.end() - frame.size()));
}

TEST(FakeVideoModelTest, FramesDependOnSeedAndIndex) {
  std::vector<uint8_t> a(32 * 16 * 3), b(a.size()), c(a.size());
  FakeVideoModel::RenderFrame(1, 0, 32, 16, a.data());
  FakeVideoModel::RenderFrame(2, 0, 32, 16, b.data());
  FakeVideoModel::RenderFrame(1, 1, 32, 16, c.data());
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
}

TEST(FakeVideoModelTest, AppliesDefaults) {
  FakeVideoModelOptions o = FastOptions();
  FakeVideoModel model(o);
  RecordingSink sink;
  CancelToken cancel;
  ASSERT_TRUE(model.Generate(GenerateRequest{}, sink, cancel).ok());
  EXPECT_EQ(sink.plan_.width, o.default_width);
  EXPECT_EQ(sink.plan_.height, o.default_height);
  EXPECT_EQ(sink.plan_.frames, o.default_frames);
  EXPECT_EQ(sink.plan_.denoise_steps, o.default_steps - 1);
  EXPECT_EQ(sink.steps_.size(), static_cast<size_t>(o.default_steps - 1));
}

TEST(FakeVideoModelTest, RejectsOddWidthNamingTheField) {
  FakeVideoModel model(FastOptions());
  GenerateRequest req;
  req.width = 63;
  RecordingSink sink;
  CancelToken cancel;
  const absl::Status s = model.Generate(req, sink, cancel);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("width"), absl::string_view::npos);
}

TEST(FakeVideoModelTest, FailsAtTheConfiguredStep) {
  FakeVideoModelOptions o = FastOptions();
  o.fail_at_step = 3;
  FakeVideoModel model(o);
  RecordingSink sink;
  CancelToken cancel;
  const absl::Status s = model.Generate(GenerateRequest{}, sink, cancel);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(sink.steps_.size(), 2u);
  EXPECT_EQ(sink.frames_seen_, 0);
}

TEST(FakeVideoModelTest, CancelStopsWithinOneStep) {
  FakeVideoModelOptions o = FastOptions();
  o.step_time = absl::Milliseconds(50);
  FakeVideoModel model(o);
  GenerateRequest req;
  req.grid_points = 1000;
  RecordingSink sink;
  CancelToken cancel;
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(120));
    cancel.Cancel();
  });
  const absl::Status s = model.Generate(req, sink, cancel);
  canceller.join();
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  // Cancelled during the third step: at most that step's predecessors ran.
  EXPECT_LE(sink.steps_.size(), 3u);
  EXPECT_EQ(sink.frames_seen_, 0);
}

TEST(FakeVideoModelTest, ReloadRecordsTheVersion) {
  FakeVideoModel model(FastOptions());
  EXPECT_EQ(model.Reload("/nonexistent/ckpt", false, "").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(model.Version(), "fake");
  ASSERT_TRUE(model.Reload(LVS_SOURCE_DIR, true, "").ok());
  EXPECT_EQ(model.Version(), std::string(LVS_SOURCE_DIR) + " (ema)");
  // A VAE directory that does not exist leaves the version alone.
  EXPECT_EQ(
      model.Reload(LVS_SOURCE_DIR, false, "/nonexistent/vae").status().code(),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(model.Version(), std::string(LVS_SOURCE_DIR) + " (ema)");
  ASSERT_TRUE(model.Reload(LVS_SOURCE_DIR, false, LVS_SOURCE_DIR).ok());
  EXPECT_EQ(model.Version(),
            absl::StrCat(LVS_SOURCE_DIR, " + vae ", LVS_SOURCE_DIR));
}

}  // namespace
}  // namespace lvs::worker
