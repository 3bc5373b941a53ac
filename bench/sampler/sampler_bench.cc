// Sampler overheads outside the DiT, at the real f24F96R960 latent size
// (1248x704, 96 frames -> [1, 16, 24, 88, 156], 5.3 M values):
//  * BM_InitialNoise: drawing the seeded initial latent (Philox + Box-Muller).
//  * BM_GuidedEulerStep: one guided step with a zero-cost velocity model
//    (bf16 casts, batch concat, float32 combination, renorm norms, update).
//  * BM_PlanModelCalls: the 70-step schedule.
// Run: build-*/bench/sampler/sampler_bench (OPENBLAS_CORETYPE, fixed by the
// program itself on a fallback core, is printed in the context).
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "model/common/blas_check.h"
#include "model/sampler/flow_sampler.h"
#include "model/sampler/noise.h"

namespace lvs::sampler {
namespace {

const int64_t kShape[] = {1, 16, 24, 88, 156};

void BM_InitialNoise(benchmark::State& state) {
  for (auto _ : state) {
    torch::Tensor z = InitialNoise(42, kShape);
    benchmark::DoNotOptimize(z.data_ptr());
  }
  const int64_t n = 16 * 24 * 88 * 156;
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_InitialNoise)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_GuidedEulerStep(benchmark::State& state) {
  const auto dtype = state.range(0) ? torch::kBFloat16 : torch::kFloat32;
  SampleConfig config = *NamedSampleConfig("f24F96R960");
  const torch::Tensor velocity = InitialNoise(1, {2, 16, 24, 88, 156}, dtype);
  // The "model" returns a precomputed batch: only the sampler's work counts.
  VelocityFn model = [&velocity](
                         const torch::Tensor& x, const torch::Tensor&,
                         const torch::Tensor&, const torch::Tensor&,
                         const torch::Tensor&,
                         const PatchComb&) -> absl::StatusOr<torch::Tensor> {
    return velocity.slice(0, 0, x.size(0));
  };
  Guidance guidance{torch::zeros({2, 8, 4}, dtype),
                    torch::ones({2, 8}, torch::kInt64)};
  const torch::Tensor z = InitialNoise(2, kShape);
  SamplerOptions options;
  options.dtype = dtype;
  options.grid_points = 11;  // 10 steps: 9 guided, the last one unguided
  for (auto _ : state) {
    auto r = SampleFlow(model, config, z, guidance, options);
    if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
  }
  state.SetItemsProcessed(state.iterations() * 10);  // Euler steps
}
BENCHMARK(BM_GuidedEulerStep)
    ->Arg(0)
    ->Arg(1)
    ->ArgName("bf16")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_PlanModelCalls(benchmark::State& state) {
  SampleConfig config = *NamedSampleConfig("f24F96R960-MultiScale");
  for (auto _ : state) {
    auto calls = PlanModelCalls(config, 70, TimePrecision::kBFloat16);
    benchmark::DoNotOptimize(calls);
  }
}
BENCHMARK(BM_PlanModelCalls);

}  // namespace
}  // namespace lvs::sampler

int main(int argc, char** argv) {
  // Before any BLAS call or thread: may re-execute the program.
  lvs::common::EnsureOpenBlasCore(argv);
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  benchmark::AddCustomContext("OPENBLAS_CORETYPE", core ? core : "(unset)");
  benchmark::AddCustomContext("torch_threads",
                              std::to_string(at::get_num_threads()));
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
