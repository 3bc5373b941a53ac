// DiT benchmark on a CUDA build (LVS_WITH_CUDA): one bf16 forward of a
// MultiScaleNextDiT_2B_GQA-shaped model with random weights on the guided
// batch [positive, negative] of the f24F96R960 latent [2, 16, 24, 88, 156]
// (captions of 256 tokens), for each patch combination (1x2: 82,368 tokens
// per item). Counters: tokens per item, achieved TFLOP/s (the analytic
// count of bench/dit/dit_bench.cc) and the peak of the CUDA caching
// allocator.
#include <benchmark/benchmark.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <memory>

#include "model/dit/config_2b.h"
#include "model/dit/dit.h"

namespace lvs::dit {
namespace {

double PeakGpuGb() {
  return c10::cuda::CUDACachingAllocator::getDeviceStats(0)
             .allocated_bytes[0]
             .peak /
         1e9;
}

MultiScaleNextDiT& Model() {
  static auto* model = [] {
    auto* m = new MultiScaleNextDiT(Config2B());
    (*m)->to(torch::kCUDA, torch::kBFloat16);
    return m;
  }();
  return *model;
}

void BM_DiTForward2BCuda(benchmark::State& state) {
  const int64_t pf = state.range(0), p = state.range(1);
  torch::NoGradGuard no_grad;
  MultiScaleNextDiT& model = Model();
  const DiTConfig& c = model->config();
  const auto opt = torch::dtype(torch::kBFloat16).device(torch::kCUDA);
  torch::Tensor x = torch::randn({2, 16, 24, 88, 156}, opt);
  torch::Tensor cap = torch::randn({2, 256, c.cap_feat_dim}, opt);
  torch::Tensor mask = torch::ones({2, 256}, opt.dtype(torch::kInt64));
  torch::Tensor t = torch::full({2}, 0.3, opt);
  torch::Tensor motion = torch::full({2}, 1.0, opt);
  model->forward(x, t, cap, mask, motion, p, pf);  // Warm-up.
  torch::cuda::synchronize();
  for (auto _ : state) {
    torch::Tensor out = model->forward(x, t, cap, mask, motion, p, pf);
    torch::cuda::synchronize();
  }
  const double n = 24 / pf * (88 / p) * (156 / p), ny = 256;
  const double dim = c.dim, kv = c.n_kv_heads * c.head_dim(),
               ffn = c.ffn_hidden_dim();
  const double per_layer =
      2 * n * (2 * dim * dim + 2 * dim * kv + 3 * dim * ffn) +
      4 * ny * c.cap_feat_dim * kv + 4 * n * n * dim + 4 * n * ny * dim;
  state.counters["tokens_per_item"] = n;
  state.counters["TFLOP_per_s"] =
      benchmark::Counter(2 * c.n_layers * per_layer / 1e12,
                         benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_gpu_GB"] = PeakGpuGb();
}
BENCHMARK(BM_DiTForward2BCuda)
    ->Args({2, 4})
    ->Args({2, 2})
    ->Args({1, 2})
    ->Unit(benchmark::kSecond)
    ->Iterations(2)
    ->UseRealTime();

}  // namespace
}  // namespace lvs::dit

BENCHMARK_MAIN();
