// Tests of lvs::media::VideoEncoder: streamed fragmented MP4 decoded back
// with libavformat/libavcodec (through VideoDecoder), chunk invariants, file
// layouts, odd sizes and option validation.
#include "model/media/video_encoder.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/media/video_decoder.h"
#include "tests/media/synthetic_video.h"

namespace lvs::media {
namespace {

using ::lvs::media::testing::Box;
using ::lvs::media::testing::Psnr;
using ::lvs::media::testing::RegionPsnr;
using ::lvs::media::testing::SyntheticFrame;
using ::lvs::media::testing::TopLevelBoxes;
using ::testing::HasSubstr;

// Quality bound at CRF 18: RGB PSNR of every decoded frame against its
// input. The synthetic scene's sharp saturated edges cap 4:2:0 at about
// 35 dB even losslessly (CRF 0); CRF 18 measures 33-40 dB.
constexpr double kMinPsnrCrf18 = 30.0;

VideoEncoderOptions SmallOptions(int width = 96, int height = 64) {
  VideoEncoderOptions options;
  options.width = width;
  options.height = height;
  options.crf = 18;
  options.threads = 1;  // Deterministic and light on shared CI cores.
  return options;
}

// A copy of every chunk the sink saw, with the order it saw them in.
struct Recorded {
  std::vector<uint8_t> bytes;
  std::vector<Chunk> chunks;  // bytes spans point into `copies`.
  std::vector<std::vector<uint8_t>> copies;

  ChunkSink Sink() {
    return [this](const Chunk& chunk) {
      copies.emplace_back(chunk.bytes.begin(), chunk.bytes.end());
      Chunk kept = chunk;
      kept.bytes = copies.back();
      chunks.push_back(kept);
      bytes.insert(bytes.end(), chunk.bytes.begin(), chunk.bytes.end());
      return absl::OkStatus();
    };
  }
};

// Encodes `frames` synthetic frames through the streaming encoder.
std::unique_ptr<VideoEncoder> EncodeStream(const VideoEncoderOptions& options,
                                           int frames, Recorded* out) {
  auto encoder = VideoEncoder::CreateStreaming(options, out->Sink());
  EXPECT_TRUE(encoder.ok()) << encoder.status();
  if (!encoder.ok()) return nullptr;
  for (int t = 0; t < frames; ++t) {
    const absl::Status s =
        (*encoder)->AddFrame(SyntheticFrame(options.width, options.height, t));
    EXPECT_TRUE(s.ok()) << s;
  }
  const absl::Status s = (*encoder)->Finish();
  EXPECT_TRUE(s.ok()) << s;
  return std::move(encoder).value();
}

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

std::string TempPath(const std::string& name) {
  return std::string(LVS_BINARY_DIR) + "/media_test_" + name;
}

std::vector<std::string> BoxTypes(const std::vector<Box>& boxes) {
  std::vector<std::string> types;
  for (const Box& b : boxes) types.push_back(b.type);
  return types;
}

TEST(VideoEncoderTest, StreamDecodesToTheInputFrames) {
  const VideoEncoderOptions options = SmallOptions();
  Recorded rec;
  auto encoder = EncodeStream(options, 30, &rec);
  ASSERT_NE(encoder, nullptr);
  EXPECT_EQ(encoder->stats().frames, 30);
  EXPECT_EQ(encoder->stats().bytes, static_cast<int64_t>(rec.bytes.size()));
  EXPECT_EQ(encoder->stats().chunks, static_cast<int64_t>(rec.chunks.size()));

  auto decoder = VideoDecoder::OpenBuffer(rec.bytes, "stream");
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  const VideoStreamInfo& info = (*decoder)->info();
  EXPECT_EQ(info.codec, "h264");
  EXPECT_EQ(info.pixel_format, "yuv420p");
  EXPECT_EQ(info.width, 96);
  EXPECT_EQ(info.height, 64);
  EXPECT_EQ(info.fps_num, 24);
  EXPECT_EQ(info.fps_den, 1);
  EXPECT_EQ(info.frames, 30);
  auto frames = (*decoder)->DecodeAll();
  ASSERT_TRUE(frames.ok()) << frames.status();
  ASSERT_EQ(frames->size(), 30u);
  for (int t = 0; t < 30; ++t) {
    const auto& f = (*frames)[t];
    ASSERT_EQ(f.width, 96);
    ASSERT_EQ(f.height, 64);
    // Spaced 1/fps apart; B-frame reordering delays the first (no edit
    // list in fragmented MP4).
    EXPECT_NEAR(f.time_seconds - (*frames)[0].time_seconds, t / 24.0, 1e-6)
        << "frame " << t;
    EXPECT_GT(Psnr(f.rgb, SyntheticFrame(96, 64, t), 96, 64), kMinPsnrCrf18)
        << "frame " << t;
  }
}

TEST(VideoEncoderTest, ChunksAreContiguousBoundedAndTyped) {
  VideoEncoderOptions options = SmallOptions();
  options.gop_size = 8;
  Recorded rec;
  ASSERT_NE(EncodeStream(options, 40, &rec), nullptr);
  ASSERT_FALSE(rec.chunks.empty());
  int64_t offset = 0;
  int media_starts = 0, trailer_starts = 0;
  for (const Chunk& c : rec.chunks) {
    EXPECT_EQ(c.offset, offset);
    EXPECT_GT(c.bytes.size(), 0u);
    EXPECT_LE(c.bytes.size(), static_cast<size_t>(kMaxChunkBytes));
    offset += c.bytes.size();
    if (!c.segment_start) continue;
    const std::string type(c.bytes.begin() + 4, c.bytes.begin() + 8);
    if (c.kind == SegmentKind::kMedia) {
      ++media_starts;
      EXPECT_EQ(type, "moof") << "at offset " << c.offset;
    } else if (c.kind == SegmentKind::kTrailer) {
      ++trailer_starts;
      EXPECT_EQ(type, "mfra");
    }
  }
  EXPECT_EQ(offset, static_cast<int64_t>(rec.bytes.size()));
  // A fixed GOP of 8 over 40 frames: 5 keyframes, so 5 fragments.
  EXPECT_EQ(media_starts, 5);
  EXPECT_EQ(trailer_starts, 1);
  const std::vector<Box> boxes = TopLevelBoxes(rec.bytes);
  EXPECT_THAT(BoxTypes(boxes),
              ::testing::ElementsAre("ftyp", "moov", "moof", "mdat", "moof",
                                     "mdat", "moof", "mdat", "moof", "mdat",
                                     "moof", "mdat", "mfra"));
}

TEST(VideoEncoderTest, InitSegmentLeavesFirstAndFragmentsBeforeFinish) {
  VideoEncoderOptions options = SmallOptions();
  options.gop_size = 4;
  Recorded rec;
  auto encoder = VideoEncoder::CreateStreaming(options, rec.Sink());
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  // Before any frame: exactly the init segment.
  ASSERT_FALSE(rec.chunks.empty());
  EXPECT_EQ(rec.chunks[0].kind, SegmentKind::kInit);
  EXPECT_TRUE(rec.chunks[0].segment_start);
  for (const Chunk& c : rec.chunks) EXPECT_EQ(c.kind, SegmentKind::kInit);
  EXPECT_THAT(BoxTypes(TopLevelBoxes(rec.bytes)),
              ::testing::ElementsAre("ftyp", "moov"));
  const size_t init_bytes = rec.bytes.size();

  for (int t = 0; t < 48; ++t) {
    ASSERT_TRUE((*encoder)->AddFrame(SyntheticFrame(96, 64, t)).ok());
  }
  // Fragments closed by later keyframes have left while encoding goes on
  // (x264's lookahead holds back at most its depth of frames).
  EXPECT_GT(rec.bytes.size(), init_bytes);
  EXPECT_EQ(rec.chunks.back().kind, SegmentKind::kMedia);
  const size_t before_finish = rec.bytes.size();
  ASSERT_TRUE((*encoder)->Finish().ok());
  EXPECT_GT(rec.bytes.size(), before_finish);
}

TEST(VideoEncoderTest, StreamIsByteIdenticalToTheMuxersFileOutput) {
  const VideoEncoderOptions options = SmallOptions();
  Recorded rec;
  ASSERT_NE(EncodeStream(options, 20, &rec), nullptr);

  const std::string path = TempPath("fragmented.mp4");
  auto file =
      VideoEncoder::CreateFile(options, path, Mp4FileLayout::kFragmented);
  ASSERT_TRUE(file.ok()) << file.status();
  for (int t = 0; t < 20; ++t) {
    ASSERT_TRUE((*file)->AddFrame(SyntheticFrame(96, 64, t)).ok());
  }
  ASSERT_TRUE((*file)->Finish().ok());
  const std::vector<uint8_t> written = ReadFile(path);
  EXPECT_EQ((*file)->stats().bytes, static_cast<int64_t>(written.size()));
  ASSERT_EQ(written.size(), rec.bytes.size());
  EXPECT_TRUE(written == rec.bytes);
  std::remove(path.c_str());
}

TEST(VideoEncoderTest, SmallChunkLimitSplitsWritesWithoutChangingBytes) {
  VideoEncoderOptions options = SmallOptions();
  Recorded whole;
  ASSERT_NE(EncodeStream(options, 12, &whole), nullptr);
  options.max_chunk_bytes = 1000;
  Recorded split;
  ASSERT_NE(EncodeStream(options, 12, &split), nullptr);
  EXPECT_TRUE(split.bytes == whole.bytes);
  bool full_chunk = false;
  for (const Chunk& c : split.chunks) {
    EXPECT_LE(c.bytes.size(), 1000u);
    full_chunk |= c.bytes.size() == 1000u;
  }
  EXPECT_TRUE(full_chunk);
  EXPECT_GT(split.chunks.size(), whole.chunks.size());
}

TEST(VideoEncoderTest, OddSizesArePaddedByReplication) {
  const VideoEncoderOptions options = SmallOptions(95, 63);
  Recorded rec;
  auto encoder = EncodeStream(options, 3, &rec);
  ASSERT_NE(encoder, nullptr);
  EXPECT_EQ(encoder->output_width(), 96);
  EXPECT_EQ(encoder->output_height(), 64);
  auto decoder = VideoDecoder::OpenBuffer(rec.bytes);
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  EXPECT_EQ((*decoder)->info().width, 96);
  EXPECT_EQ((*decoder)->info().height, 64);
  auto frames = (*decoder)->DecodeAll();
  ASSERT_TRUE(frames.ok()) << frames.status();
  ASSERT_EQ(frames->size(), 3u);
  const std::vector<uint8_t> input = SyntheticFrame(95, 63, 0);
  EXPECT_GT(RegionPsnr((*frames)[0].rgb, 96, input, 95, 95, 63), kMinPsnrCrf18);
  // The padded column repeats the last input column (within coding error).
  // The padded column and row repeat the last input ones (within coding
  // error), so their PSNR against those is as good as the picture's.
  std::vector<uint8_t> last_column, padded_column;
  for (int y = 0; y < 63; ++y) {
    for (int c = 0; c < 3; ++c) {
      last_column.push_back(input[(y * 95 + 94) * 3 + c]);
      padded_column.push_back((*frames)[0].rgb[(y * 96 + 95) * 3 + c]);
    }
  }
  EXPECT_GT(Psnr(padded_column, last_column, 1, 63), kMinPsnrCrf18);
  const std::vector<uint8_t> last_row(input.end() - 95 * 3, input.end());
  const std::vector<uint8_t> padded_row((*frames)[0].rgb.end() - 96 * 3,
                                        (*frames)[0].rgb.end() - 3);
  EXPECT_GT(Psnr(padded_row, last_row, 95, 1), kMinPsnrCrf18);
}

TEST(VideoEncoderTest, OddSizesCanBeCropped) {
  VideoEncoderOptions options = SmallOptions(95, 63);
  options.even_dimensions = EvenDimensions::kCrop;
  Recorded rec;
  auto encoder = EncodeStream(options, 3, &rec);
  ASSERT_NE(encoder, nullptr);
  EXPECT_EQ(encoder->output_width(), 94);
  EXPECT_EQ(encoder->output_height(), 62);
  auto decoder = VideoDecoder::OpenBuffer(rec.bytes);
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  auto frames = (*decoder)->DecodeAll(1);
  ASSERT_TRUE(frames.ok()) << frames.status();
  ASSERT_EQ(frames->size(), 1u);
  EXPECT_EQ((*frames)[0].width, 94);
  EXPECT_EQ((*frames)[0].height, 62);
  EXPECT_GT(
      RegionPsnr((*frames)[0].rgb, 94, SyntheticFrame(95, 63, 0), 95, 94, 62),
      kMinPsnrCrf18);
}

TEST(VideoEncoderTest, PlainAndFaststartFiles) {
  const VideoEncoderOptions options = SmallOptions();
  for (Mp4FileLayout layout :
       {Mp4FileLayout::kPlain, Mp4FileLayout::kPlainFaststart}) {
    const bool faststart = layout == Mp4FileLayout::kPlainFaststart;
    const std::string path =
        TempPath(faststart ? "faststart.mp4" : "plain.mp4");
    auto encoder = VideoEncoder::CreateFile(options, path, layout);
    ASSERT_TRUE(encoder.ok()) << encoder.status();
    for (int t = 0; t < 10; ++t) {
      ASSERT_TRUE((*encoder)->AddFrame(SyntheticFrame(96, 64, t)).ok());
    }
    ASSERT_TRUE((*encoder)->Finish().ok());
    const std::vector<uint8_t> bytes = ReadFile(path);
    EXPECT_EQ((*encoder)->stats().bytes, static_cast<int64_t>(bytes.size()));
    const std::vector<Box> boxes = TopLevelBoxes(bytes);
    std::vector<std::string> types = BoxTypes(boxes);
    if (faststart) {
      EXPECT_THAT(types,
                  ::testing::ElementsAre("ftyp", "moov", "free", "mdat"));
    } else {
      EXPECT_THAT(types,
                  ::testing::ElementsAre("ftyp", "free", "mdat", "moov"));
    }
    auto decoder = VideoDecoder::OpenFile(path);
    ASSERT_TRUE(decoder.ok()) << decoder.status();
    EXPECT_EQ((*decoder)->info().frames, 10);  // From the moov's sample table.
    auto frames = (*decoder)->DecodeAll();
    ASSERT_TRUE(frames.ok()) << frames.status();
    ASSERT_EQ(frames->size(), 10u);
    EXPECT_GT(Psnr((*frames)[0].rgb, SyntheticFrame(96, 64, 0), 96, 64),
              kMinPsnrCrf18);
    std::remove(path.c_str());
  }
}

TEST(VideoEncoderTest, FractionalFrameRate) {
  VideoEncoderOptions options = SmallOptions();
  options.fps_num = 30000;
  options.fps_den = 1001;
  Recorded rec;
  ASSERT_NE(EncodeStream(options, 12, &rec), nullptr);
  auto decoder = VideoDecoder::OpenBuffer(rec.bytes);
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  EXPECT_EQ((*decoder)->info().fps_num, 30000);
  EXPECT_EQ((*decoder)->info().fps_den, 1001);
  auto frames = (*decoder)->DecodeAll();
  ASSERT_TRUE(frames.ok()) << frames.status();
  ASSERT_EQ(frames->size(), 12u);
  EXPECT_NEAR((*frames)[11].time_seconds - (*frames)[0].time_seconds,
              11 * 1001.0 / 30000.0, 1e-6);
}

TEST(VideoEncoderTest, HigherCrfGivesFewerBytesAndLowerQuality) {
  VideoEncoderOptions options = SmallOptions();
  Recorded fine;
  ASSERT_NE(EncodeStream(options, 12, &fine), nullptr);
  options.crf = 40;
  Recorded coarse;
  ASSERT_NE(EncodeStream(options, 12, &coarse), nullptr);
  EXPECT_LT(coarse.bytes.size(), fine.bytes.size());
  auto fine_frames = (*VideoDecoder::OpenBuffer(fine.bytes))->DecodeAll(1);
  auto coarse_frames = (*VideoDecoder::OpenBuffer(coarse.bytes))->DecodeAll(1);
  ASSERT_TRUE(fine_frames.ok() && coarse_frames.ok());
  const std::vector<uint8_t> input = SyntheticFrame(96, 64, 0);
  EXPECT_LT(Psnr((*coarse_frames)[0].rgb, input, 96, 64),
            Psnr((*fine_frames)[0].rgb, input, 96, 64) - 3.0);
}

TEST(VideoEncoderTest, SinkErrorAbortsAndSticks) {
  int calls = 0;
  auto encoder = VideoEncoder::CreateStreaming(
      SmallOptions(), [&calls](const Chunk& chunk) {
        if (chunk.kind == SegmentKind::kInit) return absl::OkStatus();
        ++calls;
        return absl::UnavailableError("client went away");
      });
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  absl::Status status;
  for (int t = 0; t < 60 && status.ok(); ++t) {
    status = (*encoder)->AddFrame(SyntheticFrame(96, 64, t));
  }
  if (status.ok()) status = (*encoder)->Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr("client went away"));
  EXPECT_EQ(calls, 1);
  const absl::Status again = (*encoder)->AddFrame(SyntheticFrame(96, 64, 0));
  EXPECT_EQ(again, status);
  EXPECT_EQ((*encoder)->Finish(), status);
}

TEST(VideoEncoderTest, CallsOutOfOrderFail) {
  Recorded rec;
  auto encoder = VideoEncoder::CreateStreaming(SmallOptions(), rec.Sink());
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  const absl::Status wrong = (*encoder)->AddFrame(std::vector<uint8_t>(10));
  EXPECT_EQ(wrong.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.message(), HasSubstr("96x64x3"));
  ASSERT_TRUE((*encoder)->AddFrame(SyntheticFrame(96, 64, 0)).ok());
  ASSERT_TRUE((*encoder)->Finish().ok());
  EXPECT_EQ((*encoder)->Finish().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*encoder)->AddFrame(SyntheticFrame(96, 64, 1)).code(),
            absl::StatusCode::kFailedPrecondition);
}

struct BadOption {
  const char* field;
  void (*mutate)(VideoEncoderOptions*);
};

TEST(VideoEncoderTest, BadOptionsNameTheField) {
  const BadOption cases[] = {
      {"width", [](VideoEncoderOptions* o) { o->width = 0; }},
      {"height", [](VideoEncoderOptions* o) { o->height = 0; }},
      {"width", [](VideoEncoderOptions* o) { o->width = 20000; }},
      {"fps_num", [](VideoEncoderOptions* o) { o->fps_num = 0; }},
      {"fps_den", [](VideoEncoderOptions* o) { o->fps_den = 0; }},
      {"crf", [](VideoEncoderOptions* o) { o->crf = 52; }},
      {"crf", [](VideoEncoderOptions* o) { o->crf = -1; }},
      {"preset", [](VideoEncoderOptions* o) { o->preset = "warp"; }},
      {"tune", [](VideoEncoderOptions* o) { o->tune = "film,loud"; }},
      {"gop_size", [](VideoEncoderOptions* o) { o->gop_size = -1; }},
      {"threads", [](VideoEncoderOptions* o) { o->threads = -2; }},
      {"max_chunk_bytes",
       [](VideoEncoderOptions* o) { o->max_chunk_bytes = 0; }},
      {"max_chunk_bytes",
       [](VideoEncoderOptions* o) { o->max_chunk_bytes = kMaxChunkBytes + 1; }},
      {"crop",
       [](VideoEncoderOptions* o) {
         o->width = 1;
         o->even_dimensions = EvenDimensions::kCrop;
       }},
  };
  for (const BadOption& c : cases) {
    VideoEncoderOptions options = SmallOptions();
    c.mutate(&options);
    const absl::Status direct = ValidateEncoderOptions(options);
    EXPECT_EQ(direct.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(direct.message(), HasSubstr(c.field));
    Recorded rec;
    auto encoder = VideoEncoder::CreateStreaming(options, rec.Sink());
    EXPECT_EQ(encoder.status(), direct) << c.field;
    EXPECT_TRUE(rec.chunks.empty());
  }
  VideoEncoderOptions ok = SmallOptions();
  ok.tune = "zerolatency";
  EXPECT_TRUE(ValidateEncoderOptions(ok).ok());
  EXPECT_EQ(VideoEncoder::CreateStreaming(ok, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(VideoEncoderTest, UnwritablePathNamesTheFile) {
  auto encoder =
      VideoEncoder::CreateFile(SmallOptions(), "/nonexistent-dir/out.mp4");
  ASSERT_FALSE(encoder.ok());
  EXPECT_THAT(encoder.status().message(),
              HasSubstr("/nonexistent-dir/out.mp4"));
  EXPECT_THAT(encoder.status().message(), HasSubstr("avio_open"));
}

// The path of `program` on PATH, or "" when it is not installed.
std::string FindOnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return "";
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    const std::string candidate = std::string(dir) + "/" + program;
    if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Runs `command` and returns what it printed (empty on failure).
std::string RunCommand(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  pclose(pipe);
  return out;
}

TEST(VideoEncoderTest, FfprobeReadsStreamedAndPlainFiles) {
  const std::string ffprobe = FindOnPath("ffprobe");
  if (ffprobe.empty()) GTEST_SKIP() << "ffprobe is not installed";
  VideoEncoderOptions options = SmallOptions();
  options.gop_size = 6;
  Recorded rec;
  ASSERT_NE(EncodeStream(options, 14, &rec), nullptr);
  const std::string streamed = TempPath("ffprobe_streamed.mp4");
  {
    std::ofstream out(streamed, std::ios::binary);
    out.write(reinterpret_cast<const char*>(rec.bytes.data()),
              rec.bytes.size());
  }
  const std::string plain = TempPath("ffprobe_plain.mp4");
  {
    auto encoder = VideoEncoder::CreateFile(options, plain);
    ASSERT_TRUE(encoder.ok()) << encoder.status();
    for (int t = 0; t < 14; ++t) {
      ASSERT_TRUE((*encoder)->AddFrame(SyntheticFrame(96, 64, t)).ok());
    }
    ASSERT_TRUE((*encoder)->Finish().ok());
  }
  for (const std::string& path : {streamed, plain}) {
    const std::string out = RunCommand(
        ffprobe +
        " -v error -count_frames -select_streams v:0 -show_entries "
        "stream=codec_name,profile,pix_fmt,width,height,r_frame_rate,"
        "nb_read_frames,color_space -of default=noprint_wrappers=1 " +
        path);
    EXPECT_THAT(out, HasSubstr("codec_name=h264\n")) << path;
    EXPECT_THAT(out, HasSubstr("pix_fmt=yuv420p\n")) << path;
    EXPECT_THAT(out, HasSubstr("width=96\nheight=64\n")) << path;
    EXPECT_THAT(out, HasSubstr("r_frame_rate=24/1\n")) << path;
    EXPECT_THAT(out, HasSubstr("nb_read_frames=14\n")) << path;
    EXPECT_THAT(out, HasSubstr("color_space=bt709\n")) << path;
    std::remove(path.c_str());
  }
}

}  // namespace
}  // namespace lvs::media
