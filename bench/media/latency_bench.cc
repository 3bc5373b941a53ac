// Streaming latency of lvs::media::VideoEncoder: wall time from the first
// frame handed to AddFrame until the sink receives the first byte of the
// first fragment (moof+mdat), with frames fed as fast as the encoder takes
// them. A fragment closes when the next keyframe is encoded, so the figure
// is about one GOP of frames plus x264's lookahead and B-frame delay; the
// "zerolatency" tune removes the latter two.
//
// Run: build-*/bench/media/media_latency_bench [--benchmark_repetitions=3]
// Counters: frames_in (frames passed to AddFrame when the first fragment
// came out), init_ms (CreateStreaming, which delivers the init segment).
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "benchmark/benchmark.h"
#include "model/media/video_encoder.h"
#include "tests/media/synthetic_video.h"

namespace lvs::media {
namespace {

using Clock = std::chrono::steady_clock;

// Args: width, height, gop_size, zerolatency (0/1).
void BM_FirstFragmentLatency(benchmark::State& state) {
  VideoEncoderOptions options;
  options.width = state.range(0);
  options.height = state.range(1);
  options.gop_size = state.range(2);
  if (state.range(3) != 0) options.tune = "zerolatency";
  // Enough frames for two GOPs plus the deepest lookahead (medium: 40).
  const int count = 2 * options.gop_size + 48;
  std::vector<std::vector<uint8_t>> frames;
  for (int t = 0; t < count; ++t) {
    frames.push_back(testing::SyntheticFrame(options.width, options.height, t));
  }
  int64_t frames_in = 0;
  double init_ms = 0;
  for (auto _ : state) {
    bool fragment_out = false;
    Clock::time_point first_in, out;
    const Clock::time_point create = Clock::now();
    auto encoder =
        VideoEncoder::CreateStreaming(options, [&](const Chunk& chunk) {
          if (chunk.kind == SegmentKind::kMedia && !fragment_out) {
            fragment_out = true;
            out = Clock::now();
          }
          return absl::OkStatus();
        });
    if (!encoder.ok()) {
      state.SkipWithError(encoder.status().ToString().c_str());
      return;
    }
    init_ms = std::chrono::duration<double, std::milli>(Clock::now() - create)
                  .count();
    first_in = Clock::now();
    frames_in = 0;
    for (const auto& frame : frames) {
      const absl::Status s = (*encoder)->AddFrame(frame);
      ++frames_in;
      if (!s.ok()) {
        state.SkipWithError(s.ToString().c_str());
        return;
      }
      if (fragment_out) break;
    }
    if (!fragment_out) {
      state.SkipWithError("no fragment before the frames ran out");
      return;
    }
    state.SetIterationTime(
        std::chrono::duration<double>(out - first_in).count());
  }  // The encoder is dropped unfinished: only the first fragment matters.
  state.counters["frames_in"] = static_cast<double>(frames_in);
  state.counters["init_ms"] = init_ms;
}

BENCHMARK(BM_FirstFragmentLatency)
    ->ArgNames({"w", "h", "gop", "zerolatency"})
    ->Args({1248, 704, 24, 0})
    ->Args({1248, 704, 24, 1})
    ->Args({1248, 704, 8, 0})
    ->Args({64, 64, 24, 0})
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace lvs::media

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext(
      "hardware_threads", std::to_string(std::thread::hardware_concurrency()));
  benchmark::AddCustomContext("x264", "preset medium, crf 23, threads auto");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
