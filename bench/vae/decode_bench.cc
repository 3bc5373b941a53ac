// Decode of a latent of 4 frames at 32x32 (16 frames of 256x256) with a
// CogVideoX-2b-shaped VAE (block widths 128/256/256/512, 3 layers per block,
// 32 groups) with random weights, fp32 on CPU: untiled, with diffusers'
// default tiles (240x360 px) and with 128x128 px tiles. Reports wall time
// and the peak resident-memory growth during the decode (Linux VmHWM, reset
// through /proc/self/clear_refs before each run) and the process's peak
// resident set (VmHWM, weights included). Large buffers come from the
// CPU buffer cache, as in the worker (common::ConfigureCpuThreads).
//
// LVS_BENCH_DTYPE=bf16 decodes with bfloat16 weights and activations.
// LVS_BENCH_VAE_LATENT=TxHxW changes the latent (default 4x32x32; e.g.
// 4x16x16 decodes 16 frames of 128x128 at a quarter of the work).
//
// Run: build/bench/vae/vae_decode_bench
//
// Measured once (2026-11-27, 16-core Xeon at 2.1 GHz, 16 torch threads,
// LibTorch 2.11 CPU kernels): untiled 30.4 s / peak RSS growth 3750 MiB;
// default tiles (2 tile rows here) 35.9 s / 3742 MiB; 128x128 px tiles
// (3 x 3 tiles) 48.6 s / 2244 MiB.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/cpu/perf_control.h"
#include "model/common/blas_check.h"
#include "model/common/cpu_buffer_cache.h"
#include "model/common/cpu_runtime.h"
#include "model/vae/vae.h"

namespace lvs::vae {
namespace {

// Returns a /proc/self/status field in KiB (VmRSS, VmHWM), or -1.
int64_t ProcStatusKiB(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::strtoll(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return -1;
}

// The latent's frames, height and width: LVS_BENCH_VAE_LATENT (TxHxW) or
// 4x32x32.
std::vector<int64_t> LatentShape() {
  std::vector<int64_t> thw = {4, 32, 32};
  const char* env = std::getenv("LVS_BENCH_VAE_LATENT");
  if (env == nullptr) return thw;
  std::vector<int64_t> parsed;
  for (absl::string_view part : absl::StrSplit(env, 'x')) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(part, &v) || v <= 0) return thw;
    parsed.push_back(v);
  }
  return parsed.size() == 3 ? parsed : thw;
}

// Resets VmHWM to the current resident set; false where not supported.
bool ResetPeakRss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  return static_cast<bool>(out.flush());
}

VaeConfig Cog2bConfig() {
  VaeConfig c;
  c.block_out_channels = {128, 256, 256, 512};
  c.layers_per_block = 3;
  c.norm_num_groups = 32;
  return c;
}

const CogVideoXVae& Model(int64_t tile_px) {
  static auto* models = new std::map<int64_t, std::unique_ptr<CogVideoXVae>>;
  auto& slot = (*models)[tile_px];
  if (!slot) {
    torch::manual_seed(0);
    VaeOptions options;
    const char* dtype = std::getenv("LVS_BENCH_DTYPE");
    if (dtype && std::string(dtype) == "bf16") options.dtype = torch::kBFloat16;
    options.tiling.enabled = tile_px != 0;
    if (tile_px > 0) {
      options.tiling.tile_sample_height = tile_px;
      options.tiling.tile_sample_width = tile_px;
    }
    slot =
        std::move(CogVideoXVae::CreateRandom(Cog2bConfig(), options)).value();
  }
  return *slot;
}

// Arg: 0 untiled, -1 default tiles (240x360 px), > 0 square tiles of that
// many pixels.
void BM_Decode(benchmark::State& state) {
  const CogVideoXVae& vae = Model(state.range(0));
  torch::manual_seed(1);
  const std::vector<int64_t> thw = LatentShape();
  const torch::Tensor z = torch::randn({1, 16, thw[0], thw[1], thw[2]});
  double peak_mib = 0, process_peak_mib = 0;
  for (auto _ : state) {
    const bool reset = ResetPeakRss();
    const int64_t before = ProcStatusKiB("VmRSS");
    bench::PerfEnable();
    auto out = vae.Decode(z);
    bench::PerfDisable();
    if (!out.ok()) {
      state.SkipWithError(std::string(out.status().message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(out->data_ptr());
    const int64_t hwm = ProcStatusKiB("VmHWM");
    if (reset) peak_mib = (hwm - before) / 1024.0;
    process_peak_mib = hwm / 1024.0;
  }
  state.counters["peak_rss_growth_MiB"] = peak_mib;
  state.counters["peak_rss_MiB"] = process_peak_mib;
  const common::CpuBufferCacheStats cache = common::GetCpuBufferCacheStats();
  state.counters["buffer_cache_hits"] = cache.hits;
  state.counters["buffer_cache_misses"] = cache.misses;
  state.SetLabel(absl::StrCat("latent ", thw[0], "x", thw[1], "x", thw[2]));
}
BENCHMARK(BM_Decode)
    ->ArgName("tile_px")
    ->Arg(0)
    ->Arg(-1)
    ->Arg(128)
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();

}  // namespace
}  // namespace lvs::vae

int main(int argc, char** argv) {
  // Before any BLAS call or thread: may re-execute the program.
  lvs::common::EnsureOpenBlasCore(argv);
  // LibTorch's intra-op threads as the worker sets them: all usable cores,
  // or LVS_BENCH_THREADS.
  const char* threads = std::getenv("LVS_BENCH_THREADS");
  lvs::common::ConfigureCpuThreads(threads ? std::atoi(threads) : 0);
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  benchmark::AddCustomContext("OPENBLAS_CORETYPE", core ? core : "(unset)");
  benchmark::AddCustomContext("torch_threads",
                              std::to_string(torch::get_num_threads()));
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
