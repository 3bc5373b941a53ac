// DiT benchmarks (fp32, CPU):
//  * BM_DiTForward2B: one forward of a MultiScaleNextDiT_2B_GQA-shaped model
//    (dim 2304, 16 heads, 8 kv heads, FFN 6144, captions of 2304) with random
//    weights on a [1, 16, F, H, W] latent and LVS_BENCH_DIT_CAPTION caption
//    tokens (default 256), 1x2 patches. Building all 24 layers needs 7 GB
//    in float32, so the model has LVS_BENCH_DIT_LAYERS layers (default 4)
//    and the counters extrapolate to 24 (`est_24L_s`: embedders and final
//    layer once plus 24 times the measured per-layer time).
//    LVS_BENCH_DTYPE=bf16 runs weights and activations in bfloat16.
//    Counters: tokens/s, achieved GFLOP/s (analytic count), peak RSS.
//  * BM_TiledAttentionOneHead: the tiled kernel on one head (head_dim 144) at
//    L tokens, including the real f24F96R960 length 82,368; `peak_MB` is the
//    growth of the resident set above the inputs during the call (run the
//    82,368 case alone for a clean `peak_rss_MB` of the whole process).
//  On a shared machine wall time includes waiting for a core, so the
//  benchmarks also report GFLOP per CPU-second of the process.
//
// The program fixes the OpenBLAS core itself (EnsureOpenBlasCore) and prints
// the setting.
#include <benchmark/benchmark.h>
#include <time.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "bench/cpu/perf_control.h"
#include "model/common/blas_check.h"
#include "model/common/cpu_runtime.h"
#include "model/dit/attention_kernels.h"
#include "model/dit/config_2b.h"
#include "model/dit/dit.h"

namespace lvs::dit {
namespace {

// Resident-set high-water mark in MB (VmHWM).
double PeakRssMb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0)
      return std::atof(line.c_str() + 6) / 1024.0;
  }
  return 0;
}

// Current resident set in MB (VmRSS).
double RssMb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0)
      return std::atof(line.c_str() + 6) / 1024.0;
  }
  return 0;
}

// CPU seconds used by every thread of the process so far.
double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Resets VmHWM to the current RSS (Linux >= 4.0).
void ResetPeakRss() { std::ofstream("/proc/self/clear_refs") << "5"; }

// Multiply-adds x 2 of one layer for `n` tokens and `ny` caption tokens.
double LayerFlops(const DiTConfig& c, double n, double ny) {
  const double dim = c.dim, kv = c.n_kv_heads * c.head_dim(),
               ffn = c.ffn_hidden_dim();
  const double linear = 2 * n * (2 * dim * dim + 2 * dim * kv + 3 * dim * ffn);
  const double text = 2 * ny * 2 * c.cap_feat_dim * kv;
  const double attention = 4 * n * n * dim + 4 * n * ny * dim;
  return linear + text + attention;
}

// Integer setting from the environment, or `fallback`.
int64_t EnvInt(const char* name, int64_t fallback) {
  const char* env = std::getenv(name);
  return env ? std::atoll(env) : fallback;
}

// LVS_BENCH_DTYPE: "bf16" or float32 (default).
torch::ScalarType BenchDtype() {
  const char* env = std::getenv("LVS_BENCH_DTYPE");
  return env && std::string(env) == "bf16" ? torch::kBFloat16 : torch::kFloat32;
}

void BM_DiTForward2B(benchmark::State& state) {
  const int64_t layers = EnvInt("LVS_BENCH_DIT_LAYERS", 4);
  const int64_t f = state.range(0), h = state.range(1), w = state.range(2);
  const int64_t caption = EnvInt("LVS_BENCH_DIT_CAPTION", 256);
  const torch::ScalarType dtype = BenchDtype();
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const DiTConfig config = Config2B(layers);
  MultiScaleNextDiT model(config);
  model->eval();
  model->to(dtype);
  torch::Tensor x = torch::randn({1, 16, f, h, w});
  torch::Tensor t = torch::full({1}, 0.5);
  torch::Tensor cap = torch::randn({1, caption, config.cap_feat_dim});
  torch::Tensor mask = torch::ones({1, caption}, torch::kInt64);
  torch::Tensor motion = torch::full({1}, 1.0);
  const double tokens = static_cast<double>(f * (h / 2) * (w / 2));
  const double layer_flops = LayerFlops(config, tokens, caption);
  double seconds = 0, cpu_seconds = 0;
  for (auto _ : state) {
    const double cpu0 = ProcessCpuSeconds();
    auto start = std::chrono::steady_clock::now();
    bench::PerfEnable();
    torch::Tensor out = model->forward(x, t, cap, mask, motion, 2, 1);
    bench::PerfDisable();
    benchmark::DoNotOptimize(out.data_ptr());
    seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    cpu_seconds = ProcessCpuSeconds() - cpu0;
  }
  // One more pass without the layers isolates embedders + final layer.
  MultiScaleNextDiT head_only(Config2B(0));
  head_only->to(dtype);
  auto start = std::chrono::steady_clock::now();
  head_only->forward(x, t, cap, mask, motion, 2, 1);
  const double head_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  const double per_layer = (seconds - head_s) / layers;
  state.counters["layers"] = layers;
  state.counters["caption_tokens"] = caption;
  state.counters["bf16"] = dtype == torch::kBFloat16;
  state.counters["tokens"] = tokens;
  state.counters["tokens_per_s"] = tokens / seconds;
  state.counters["GFLOP_per_s"] = layer_flops * layers / seconds / 1e9;
  // Throughput per CPU-second: what the threads achieved while they ran
  // (on a shared machine wall time also counts waiting for a core).
  state.counters["GFLOP_per_cpu_s"] = layer_flops * layers / cpu_seconds / 1e9;
  state.counters["per_layer_s"] = per_layer;
  state.counters["est_24L_s"] = head_s + 24 * per_layer;
  state.counters["est_24L_tokens_per_s"] = tokens / (head_s + 24 * per_layer);
  state.counters["peak_rss_MB"] = PeakRssMb();
}
BENCHMARK(BM_DiTForward2B)
    ->Args({4, 32, 32})
    ->Unit(benchmark::kSecond)
    ->Iterations(1)
    ->UseRealTime();

void BM_TiledAttentionOneHead(benchmark::State& state) {
  const int64_t l = state.range(0), d = 144;
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  torch::Tensor q = torch::randn({l, 1, d});
  torch::Tensor k = torch::randn({l, 1, d});
  torch::Tensor v = torch::randn({l, 1, d});
  const AttentionOptions options;
  double peak_growth = 0, base = 0, cpu_seconds = 0;
  for (auto _ : state) {
    base = RssMb();
    ResetPeakRss();
    const double cpu0 = ProcessCpuSeconds();
    torch::Tensor out = TiledAttention(q, k, v, 1.0 / 12.0, options);
    benchmark::DoNotOptimize(out.data_ptr());
    cpu_seconds = ProcessCpuSeconds() - cpu0;
    peak_growth = PeakRssMb() - base;
  }
  state.counters["tokens"] = l;
  state.counters["peak_MB"] = peak_growth;
  // Run alone (--benchmark_filter) for a clean process-wide high-water mark.
  state.counters["rss_before_MB"] = base;
  state.counters["peak_rss_MB"] = PeakRssMb();
  state.counters["GFLOP_per_cpu_s"] = 4.0 * l * l * d / cpu_seconds / 1e9;
  state.counters["dense_scores_MB"] =
      static_cast<double>(l) * l * 4 / 1048576.0;
  state.counters["GFLOP_per_s"] = benchmark::Counter(
      4.0 * l * l * d / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_TiledAttentionOneHead)
    ->Arg(8192)
    ->Arg(82368)
    ->Unit(benchmark::kSecond)
    ->Iterations(1)
    ->UseRealTime();

}  // namespace
}  // namespace lvs::dit

int main(int argc, char** argv) {
  // Before any BLAS call or thread: may re-execute the program.
  lvs::common::EnsureOpenBlasCore(argv);
  // LibTorch's intra-op threads as the worker sets them: all usable cores,
  // or LVS_BENCH_THREADS.
  const char* threads = std::getenv("LVS_BENCH_THREADS");
  lvs::common::ConfigureCpuThreads(threads ? std::atoi(threads) : 0);
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  std::printf("OPENBLAS_CORETYPE=%s, torch threads=%d\n",
              core ? core : "(unset)", torch::get_num_threads());
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
