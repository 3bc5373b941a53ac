// Tests of lvs::media::VideoDecoder on inputs the encoder tests do not
// cover: missing files, bytes that are not a container, a stream cut after
// its init segment, and frame-by-frame reading.
#include "model/media/video_decoder.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/media/video_encoder.h"
#include "tests/media/synthetic_video.h"

namespace lvs::media {
namespace {

using ::lvs::media::testing::Psnr;
using ::lvs::media::testing::SyntheticFrame;
using ::testing::HasSubstr;

// RGB PSNR bound for 64x48 at CRF 18 (the synthetic scene's edges cap 4:2:0
// at this size near 34 dB; frames measure 31-34 dB).
constexpr double kMinPsnr = 28.0;

// Streams `frames` synthetic 64x48 frames; returns the bytes and the size of
// the init segment.
std::vector<uint8_t> EncodeSmall(int frames, size_t* init_bytes) {
  VideoEncoderOptions options;
  options.width = 64;
  options.height = 48;
  options.crf = 18;
  options.threads = 1;
  options.gop_size = 4;
  std::vector<uint8_t> bytes;
  *init_bytes = 0;
  auto encoder =
      VideoEncoder::CreateStreaming(options, [&](const Chunk& chunk) {
        bytes.insert(bytes.end(), chunk.bytes.begin(), chunk.bytes.end());
        if (chunk.kind == SegmentKind::kInit) *init_bytes = bytes.size();
        return absl::OkStatus();
      });
  EXPECT_TRUE(encoder.ok()) << encoder.status();
  if (!encoder.ok()) return {};
  for (int t = 0; t < frames; ++t) {
    EXPECT_TRUE((*encoder)->AddFrame(SyntheticFrame(64, 48, t)).ok());
  }
  EXPECT_TRUE((*encoder)->Finish().ok());
  return bytes;
}

TEST(VideoDecoderTest, MissingFileIsNotFoundAndNamed) {
  auto decoder = VideoDecoder::OpenFile("/nonexistent/clip.mp4");
  ASSERT_FALSE(decoder.ok());
  EXPECT_EQ(decoder.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(decoder.status().message(), HasSubstr("/nonexistent/clip.mp4"));
}

TEST(VideoDecoderTest, BytesThatAreNotAContainerFail) {
  std::vector<uint8_t> junk(4096);
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = (i * 7919) & 0xff;
  auto decoder = VideoDecoder::OpenBuffer(junk, "junk.bin");
  ASSERT_FALSE(decoder.ok());
  EXPECT_THAT(decoder.status().message(), HasSubstr("junk.bin"));
  EXPECT_FALSE(VideoDecoder::OpenBuffer({}, "empty").ok());
}

TEST(VideoDecoderTest, InitSegmentAloneHasNoFrames) {
  size_t init_bytes = 0;
  std::vector<uint8_t> bytes = EncodeSmall(8, &init_bytes);
  ASSERT_GT(init_bytes, 0u);
  ASSERT_LT(init_bytes, bytes.size());
  bytes.resize(init_bytes);
  auto decoder = VideoDecoder::OpenBuffer(bytes, "init only");
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  EXPECT_EQ((*decoder)->info().width, 64);
  EXPECT_EQ((*decoder)->info().height, 48);
  EXPECT_EQ((*decoder)->info().frames, 0);
  auto frames = (*decoder)->DecodeAll();
  ASSERT_TRUE(frames.ok()) << frames.status();
  EXPECT_TRUE(frames->empty());
}

TEST(VideoDecoderTest, NextReadsFrameByFrameThenStops) {
  size_t init_bytes = 0;
  auto decoder = VideoDecoder::OpenBuffer(EncodeSmall(9, &init_bytes));
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  EXPECT_EQ((*decoder)->info().frames, 9);
  EXPECT_THAT((*decoder)->info().container, HasSubstr("mp4"));
  EXPECT_NEAR((*decoder)->info().duration_seconds, 9 / 24.0, 1e-6);
  auto first = (*decoder)->DecodeAll(4);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 4u);
  EXPECT_GT(Psnr((*first)[3].rgb, SyntheticFrame(64, 48, 3), 64, 48), kMinPsnr);
  RgbFrame frame;
  int rest = 0;
  for (;;) {
    auto more = (*decoder)->Next(&frame);
    ASSERT_TRUE(more.ok()) << more.status();
    if (!*more) break;
    EXPECT_GT(Psnr(frame.rgb, SyntheticFrame(64, 48, 4 + rest), 64, 48),
              kMinPsnr)
        << "frame " << 4 + rest;
    ++rest;
  }
  EXPECT_EQ(rest, 5);
  auto after_end = (*decoder)->Next(&frame);
  ASSERT_TRUE(after_end.ok()) << after_end.status();
  EXPECT_FALSE(*after_end);
}

}  // namespace
}  // namespace lvs::media
