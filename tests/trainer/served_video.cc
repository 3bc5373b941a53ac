#include "tests/trainer/served_video.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>

#include "model/media/video_decoder.h"
#include "model/media/video_encoder.h"

namespace lvs::testing {

std::vector<uint8_t> DecodeFrames(const std::string& mp4) {
  auto decoder = media::VideoDecoder::OpenBuffer(
      std::vector<uint8_t>(mp4.begin(), mp4.end()), "mp4");
  EXPECT_TRUE(decoder.ok()) << decoder.status();
  if (!decoder.ok()) return {};
  auto frames = (*decoder)->DecodeAll();
  EXPECT_TRUE(frames.ok()) << frames.status();
  std::vector<uint8_t> out;
  if (!frames.ok()) return out;
  for (const media::RgbFrame& f : *frames) {
    out.insert(out.end(), f.rgb.begin(), f.rgb.end());
  }
  return out;
}

lumina::video::v1::GenerateVideoRequest SmallVideoRequest(
    const std::string& prompt, int grid_points) {
  lumina::video::v1::GenerateVideoRequest r;
  r.set_prompt(prompt);
  r.set_width(64);
  r.set_height(64);
  r.set_frames(12);  // 3 latent frames -> 9 frames.
  r.set_fps(8);
  r.set_sample_config("f24F96R960");
  r.set_steps(grid_points);
  r.set_seed(7);
  r.set_precision(lumina::video::v1::PRECISION_FP32);
  return r;
}

double MeanAbsDiff(const std::vector<uint8_t>& a,
                   const std::vector<uint8_t>& b) {
  if (a.size() != b.size() || a.empty()) return -1;
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += std::abs(a[i] - b[i]);
  return sum / a.size();
}

std::vector<uint8_t> OfflineFrames(
    pipeline::Pipeline& pipe, const lumina::video::v1::GenerateVideoRequest& r,
    const std::optional<sampler::SampleConfig>& config) {
  pipeline::GenerationRequest g;
  g.prompt = r.prompt();
  g.width = r.width();
  g.height = r.height();
  g.frames = r.frames();
  g.fps = r.fps();
  if (!r.sample_config().empty()) g.sample_config = r.sample_config();
  g.config = config;
  g.grid_points = r.steps();
  g.seed = static_cast<uint64_t>(r.seed());
  g.precision =
      pipeline::ParsePrecision(
          r.precision() == lumina::video::v1::PRECISION_BF16 ? "bf16" : "fp32")
          .value();
  std::string mp4;
  std::unique_ptr<media::VideoEncoder> encoder;
  pipeline::PipelineCallbacks cb;
  cb.on_frames = [&](const pipeline::FramesEvent& e) -> absl::Status {
    if (encoder == nullptr) {
      media::VideoEncoderOptions o;
      o.width = e.width;
      o.height = e.height;
      o.fps_num = r.fps();
      o.crf = 0;
      o.preset = "ultrafast";
      auto created = media::VideoEncoder::CreateStreaming(
          o, [&mp4](const media::Chunk& c) {
            mp4.append(reinterpret_cast<const char*>(c.bytes.data()),
                       c.bytes.size());
            return absl::OkStatus();
          });
      if (!created.ok()) return created.status();
      encoder = *std::move(created);
    }
    const size_t frame_bytes = static_cast<size_t>(e.width) * e.height * 3;
    for (int64_t i = 0; i < e.count; ++i) {
      absl::Status s =
          encoder->AddFrame(e.rgb.subspan(i * frame_bytes, frame_bytes));
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  };
  const auto result = pipe.Generate(g, cb);
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok() || encoder == nullptr) return {};
  EXPECT_TRUE(encoder->Finish().ok());
  return DecodeFrames(mp4);
}

}  // namespace lvs::testing
