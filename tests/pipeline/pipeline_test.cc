// The resident pipeline on the tiny golden checkpoints (fp32, CPU): the
// system prompt constant, events, reuse across requests, cancellation within
// one step, frames streamed to the fMP4 encoder before the decode ends, and
// errors from the frame consumer.
#include "model/pipeline/pipeline.h"

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/media/video_encoder.h"
#include "nlohmann/json.hpp"

namespace lvs::pipeline {
namespace {

const std::string kGolden = LVS_GOLDEN_DIR;

class PipelineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    PipelineOptions o;
    o.dit_dir = kGolden + "/dit";
    o.text_encoder_dir = kGolden + "/text_encoder";
    o.vae_dir = kGolden + "/vae";
    o.device = "cpu";
    // float32 whatever the CPU (kDefault is bf16 on AMX-BF16 CPUs).
    o.precision = Precision::kFloat32;
    auto p = Pipeline::Create(o);
    ASSERT_TRUE(p.ok()) << p.status();
    pipe_ = std::move(*p).release();
  }
  static void TearDownTestSuite() {
    delete pipe_;
    pipe_ = nullptr;
  }

  static GenerationRequest Request(uint64_t seed) {
    GenerationRequest r;
    r.prompt = "A red panda eats bamboo in a snowy forest.";
    r.width = 64;
    r.height = 64;
    r.frames = 16;
    r.fps = 8;
    r.sample_config = "f24F96R960";
    r.grid_points = 4;
    r.seed = seed;
    r.precision = Precision::kFloat32;
    return r;
  }

  // Runs `r` and returns the concatenated frames.
  static std::vector<uint8_t> Frames(const GenerationRequest& r) {
    std::vector<uint8_t> out;
    PipelineCallbacks cb;
    cb.on_frames = [&](const FramesEvent& e) {
      out.insert(out.end(), e.rgb.begin(), e.rgb.end());
      return absl::OkStatus();
    };
    auto result = pipe_->Generate(r, cb);
    EXPECT_TRUE(result.ok()) << result.status();
    return out;
  }

  static Pipeline* pipe_;
};

Pipeline* PipelineTest::pipe_ = nullptr;

TEST(PipelineConstantsTest, SystemPromptIsTheGoldenOne) {
  std::ifstream in(kGolden + "/vectors/e2e_fp32.json");
  ASSERT_TRUE(in.good());
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(std::string(kSystemPrompt),
            j.at("cases").at("e2e").at("system_prompt").get<std::string>());
  EXPECT_DOUBLE_EQ(
      kVaeScaleFactor,
      j.at("cases").at("e2e").at("vae_scale_factor_used").get<double>());
}

TEST_F(PipelineTest, ReportsEveryEventInOrder) {
  std::vector<std::string> events;
  GenerationPlan plan;
  int64_t frames = 0;
  PipelineCallbacks cb;
  cb.on_plan = [&](const GenerationPlan& p) {
    plan = p;
    events.push_back("plan");
  };
  cb.on_text_encoded = [&](const TextEncodedEvent& e) {
    EXPECT_GT(e.tokens, 0);
    EXPECT_EQ(e.padded_length % 8, 0);
    events.push_back("text");
  };
  cb.on_step = [&](const sampler::StepInfo& s) {
    EXPECT_EQ(s.denoise_steps, 3);
    EXPECT_EQ(s.patch.ToString(), "1x2");
    EXPECT_TRUE(s.guided);  // t < 0.2 for every call of 4 grid points.
    events.push_back("step" + std::to_string(s.index));
  };
  cb.on_frames = [&](const FramesEvent& e) {
    EXPECT_EQ(e.first_frame, frames);
    EXPECT_EQ(e.total, 16);
    EXPECT_EQ(e.width, 64);
    EXPECT_EQ(e.height, 64);
    EXPECT_EQ(e.rgb.size(), static_cast<size_t>(e.count * 64 * 64 * 3));
    frames += e.count;
    events.push_back("frames");
    return absl::OkStatus();
  };
  cb.on_stage = [&](const StageReport& s) {
    EXPECT_GE(s.seconds, 0);
    events.push_back(s.name);
  };
  auto result = pipe_->Generate(Request(3), cb);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(plan.output_frames, 16);
  EXPECT_EQ(result->frames, 16);
  const std::vector<std::string> expected = {
      "plan",  "text",   "text",   "step0",  "step1",
      "step2", "sample", "frames", "frames", "decode"};
  EXPECT_EQ(events, expected);
}

TEST_F(PipelineTest, ReusedPipelineIsDeterministicPerSeed) {
  // 8 frames (2 latents, one decode chunk) keep the three runs short.
  GenerationRequest r = Request(11);
  r.frames = 8;
  const std::vector<uint8_t> a = Frames(r);
  const std::vector<uint8_t> b = Frames(r);
  r.seed = 12;
  const std::vector<uint8_t> c = Frames(r);
  ASSERT_EQ(a.size(), 8u * 64 * 64 * 3);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST_F(PipelineTest, CancellationStopsWithinOneStep) {
  int steps = 0;
  bool cancel = false;
  PipelineCallbacks cb;
  cb.on_step = [&](const sampler::StepInfo& s) {
    ++steps;
    if (s.index == 0) cancel = true;
  };
  cb.on_frames = [](const FramesEvent&) {
    ADD_FAILURE() << "decoded after cancellation";
    return absl::OkStatus();
  };
  cb.cancelled = [&] { return cancel; };
  auto result = pipe_->Generate(Request(5), cb);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled)
      << result.status();
  EXPECT_EQ(steps, 1);
}

TEST_F(PipelineTest, CancellationDuringDecodeStopsAfterTheChunk) {
  int chunks = 0;
  PipelineCallbacks cb;
  cb.on_frames = [&](const FramesEvent&) {
    ++chunks;
    return absl::OkStatus();
  };
  cb.cancelled = [&] { return chunks > 0; };
  auto result = pipe_->Generate(Request(5), cb);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(chunks, 1);
}

TEST_F(PipelineTest, StreamingEncoderGetsChunksBeforeTheDecodeEnds) {
  std::vector<std::string> log;
  media::VideoEncoderOptions vo;
  vo.width = 64;
  vo.height = 64;
  vo.fps_num = 8;
  vo.preset = "ultrafast";
  vo.tune = "zerolatency";
  vo.gop_size = 4;
  vo.threads = 1;
  auto encoder =
      media::VideoEncoder::CreateStreaming(vo, [&](const media::Chunk& c) {
        if (c.kind == media::SegmentKind::kMedia && c.segment_start) {
          log.push_back("fragment");
        }
        return absl::OkStatus();
      });
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  PipelineCallbacks cb;
  cb.on_frames = [&](const FramesEvent& e) -> absl::Status {
    log.push_back("frames");
    const size_t n = static_cast<size_t>(e.width) * e.height * 3;
    for (int64_t i = 0; i < e.count; ++i) {
      absl::Status s = (*encoder)->AddFrame(e.rgb.subspan(i * n, n));
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  };
  cb.on_stage = [&](const StageReport& s) {
    if (s.name == "decode") log.push_back("decode-end");
  };
  auto result = pipe_->Generate(Request(9), cb);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE((*encoder)->Finish().ok());
  // The first chunk's frames yield a fragment before the second chunk.
  ASSERT_GE(log.size(), 4u);
  EXPECT_EQ(log[0], "frames");
  EXPECT_EQ(log[1], "fragment");
  EXPECT_NE(std::find(log.begin() + 2, log.end(), "decode-end"), log.end());
}

TEST_F(PipelineTest, FrameConsumerErrorAbortsTheJob) {
  int calls = 0;
  PipelineCallbacks cb;
  cb.on_frames = [&](const FramesEvent&) {
    ++calls;
    return absl::DataLossError("encoder broke");
  };
  auto result = pipe_->Generate(Request(5), cb);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(calls, 1);
}

TEST_F(PipelineTest, OtherPrecisionReloadsTheModels) {
  GenerationRequest r = Request(4);
  r.frames = 8;
  r.precision = Precision::kBFloat16;
  const std::vector<uint8_t> bf16 = Frames(r);
  r.precision = Precision::kFloat32;
  const std::vector<uint8_t> fp32 = Frames(r);
  ASSERT_EQ(bf16.size(), 8u * 64 * 64 * 3);
  ASSERT_EQ(fp32.size(), bf16.size());
  EXPECT_NE(bf16, fp32);  // Same seed, other arithmetic.
  EXPECT_EQ(fp32, Frames(r));
}

TEST_F(PipelineTest, ReloadDiTKeepsTheWeightsOnError) {
  GenerationRequest r = Request(6);
  r.frames = 8;
  const std::vector<uint8_t> before = Frames(r);
  // The golden directory has no EMA file: NOT_FOUND naming it.
  absl::Status s = pipe_->ReloadDiT(kGolden + "/dit", /*use_ema=*/true);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_NE(s.message().find("consolidated_ema"), std::string::npos) << s;
  EXPECT_EQ(Frames(r), before);
  s = pipe_->ReloadDiT(kGolden + "/dit", /*use_ema=*/false);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Frames(r), before);
}

TEST_F(PipelineTest, ReleasedTextEncoderIsReloadedForTheNextJob) {
  PipelineOptions o = pipe_->options();
  o.release_text_encoder = true;
  auto released = Pipeline::Create(o);
  ASSERT_TRUE(released.ok()) << released.status();
  GenerationRequest r = Request(8);
  r.frames = 8;
  const std::vector<uint8_t> expected = Frames(r);
  for (int job = 0; job < 2; ++job) {
    std::vector<std::string> stages;
    std::vector<uint8_t> frames;
    PipelineCallbacks cb;
    cb.on_stage = [&](const StageReport& s) { stages.push_back(s.name); };
    cb.on_frames = [&](const FramesEvent& e) {
      frames.insert(frames.end(), e.rgb.begin(), e.rgb.end());
      return absl::OkStatus();
    };
    ASSERT_TRUE((*released)->Generate(r, cb).ok());
    EXPECT_EQ(frames, expected) << "job " << job;
    // The second job reloads the encoder dropped by the first.
    EXPECT_EQ(stages.front(), job == 0 ? "text" : "load") << "job " << job;
  }
}

TEST_F(PipelineTest, InvalidRequestNamesTheField) {
  GenerationRequest r = Request(1);
  r.width = 48;
  auto result = pipe_->Generate(r, {});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("resolution"), std::string::npos);
}

}  // namespace
}  // namespace lvs::pipeline
