// Benchmarks of lvs::media::VideoEncoder: streaming fragmented-MP4 encodes
// of synthetic RGB24 video at the default preset and CRF (medium, 23).
//
// Run: build-*/bench/media/media_encoder_bench [--benchmark_repetitions=3]
// Counters: fps (frames per wall-clock second, x264 threads on every core),
// bytes (output size). Frames are generated before timing starts.
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "benchmark/benchmark.h"
#include "model/media/video_encoder.h"
#include "tests/media/synthetic_video.h"

namespace lvs::media {
namespace {

// The frames of a width x height x count clip, built once per shape.
const std::vector<std::vector<uint8_t>>& Clip(int width, int height,
                                              int count) {
  static auto* cache = new std::vector<
      std::pair<std::vector<int>, std::vector<std::vector<uint8_t>>>>();
  for (const auto& [key, frames] : *cache) {
    if (key == std::vector<int>{width, height, count}) return frames;
  }
  std::vector<std::vector<uint8_t>> frames;
  for (int t = 0; t < count; ++t) {
    frames.push_back(testing::SyntheticFrame(width, height, t));
  }
  cache->emplace_back(std::vector<int>{width, height, count},
                      std::move(frames));
  return cache->back().second;
}

// Args: width, height, frames, x264_avx512 (0/1).
void BM_EncodeStream(benchmark::State& state) {
  const int width = state.range(0), height = state.range(1);
  const int count = state.range(2);
  const auto& frames = Clip(width, height, count);
  VideoEncoderOptions options;
  options.width = width;
  options.height = height;
  options.x264_avx512 = state.range(3) != 0;
  int64_t bytes = 0;
  for (auto _ : state) {
    bytes = 0;
    auto encoder =
        VideoEncoder::CreateStreaming(options, [&bytes](const Chunk& chunk) {
          bytes += chunk.bytes.size();
          return absl::OkStatus();
        });
    if (!encoder.ok()) {
      state.SkipWithError(encoder.status().ToString().c_str());
      return;
    }
    for (const auto& frame : frames) {
      const absl::Status s = (*encoder)->AddFrame(frame);
      if (!s.ok()) {
        state.SkipWithError(s.ToString().c_str());
        return;
      }
    }
    const absl::Status s = (*encoder)->Finish();
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return;
    }
  }
  state.counters["fps"] =
      benchmark::Counter(static_cast<double>(count) * state.iterations(),
                         benchmark::Counter::kIsRate);
  state.counters["bytes"] = static_cast<double>(bytes);
}

BENCHMARK(BM_EncodeStream)
    ->ArgNames({"w", "h", "frames", "avx512"})
    ->Args({1248, 704, 96, 0})
    ->Args({1248, 704, 96, 1})
    ->Args({64, 64, 16, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace lvs::media

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext(
      "hardware_threads", std::to_string(std::thread::hardware_concurrency()));
  benchmark::AddCustomContext("x264",
                              "preset medium, crf 23, gop 24, threads auto");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
