// Encodes a batch of 2 prompts of 256 tokens with a Gemma-2-2B-shaped
// encoder (hidden 2304, 8 heads, 4 kv heads, head_dim 256, intermediate
// 9216) with random float32 weights on the CPU, through the production path
// (Gemma2Encoder::EncodePromptEmbeds). Reports tokens/s and the process's
// peak RSS.
//
// The argument is the number of decoder layers built (production Gemma-2-2B
// runs 25 of its 26; that case needs about 8 GiB, select the small one with
// --benchmark_filter=layers:2/). The vocabulary is cut to 4096 rows: the
// embedding is a lookup, its size changes memory, not time. The program
// fixes an OpenBLAS fallback core itself; OPENBLAS_CORETYPE in effect is
// printed in the context. LVS_BENCH_DTYPE=bf16 runs weights and
// activations in bfloat16.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>

#include "bench/cpu/perf_control.h"
#include "model/common/blas_check.h"
#include "model/common/cpu_runtime.h"
#include "model/text_encoder/gemma2_encoder.h"

namespace lvs::text_encoder {
namespace {

constexpr int64_t kBatch = 2;
constexpr int64_t kTokens = 256;

Gemma2Config Gemma2BShape(int64_t layers) {
  Gemma2Config c;
  c.vocab_size = 4096;
  c.hidden_size = 2304;
  c.intermediate_size = 9216;
  c.num_hidden_layers = layers + 1;  // The last layer is never run.
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;
  c.head_dim = 256;
  c.query_pre_attn_scalar = 256;
  c.attn_logit_softcapping = 50.0;
  c.sliding_window = 4096;
  return c;
}

// LVS_BENCH_DTYPE: "bf16" or float32 (default).
torch::ScalarType BenchDtype() {
  const char* env = std::getenv("LVS_BENCH_DTYPE");
  return env && std::string(env) == "bf16" ? torch::kBFloat16 : torch::kFloat;
}

double PeakRssMiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

void BM_EncodePromptEmbeds(benchmark::State& state) {
  const int64_t layers = state.range(0);
  const Gemma2Config config = Gemma2BShape(layers);
  torch::manual_seed(0);
  Gemma2Model model(config, layers, /*final_norm=*/false);
  model->eval();
  TextEncoderOptions options;
  options.dtype = BenchDtype();
  model->to(options.dtype);
  Gemma2Encoder encoder(config, model, options);
  torch::Tensor ids =
      torch::randint(3, config.vocab_size, {kBatch, kTokens}, torch::kLong);
  ids.select(1, 0).fill_(2);  // BOS
  torch::Tensor mask = torch::ones({kBatch, kTokens}, torch::kLong);
  for (auto _ : state) {
    bench::PerfEnable();
    auto out = encoder.EncodePromptEmbeds(ids, mask);
    bench::PerfDisable();
    if (!out.ok()) {
      state.SkipWithError(std::string(out.status().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(out->data_ptr());
  }
  state.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(kBatch * kTokens),
                         benchmark::Counter::kIsIterationInvariantRate);
  state.counters["layers"] = static_cast<double>(layers);
  state.counters["peak_rss_MiB"] = PeakRssMiB();
  state.counters["torch_threads"] = torch::get_num_threads();
}
BENCHMARK(BM_EncodePromptEmbeds)
    ->ArgName("layers")
    ->Arg(2)
    ->Arg(25)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);

}  // namespace
}  // namespace lvs::text_encoder

int main(int argc, char** argv) {
  // Before any BLAS call or thread: may re-execute the program.
  lvs::common::EnsureOpenBlasCore(argv);
  // LibTorch's intra-op threads as the worker sets them: all usable cores,
  // or LVS_BENCH_THREADS.
  const char* threads = std::getenv("LVS_BENCH_THREADS");
  lvs::common::ConfigureCpuThreads(threads ? std::atoi(threads) : 0);
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  benchmark::AddCustomContext("OPENBLAS_CORETYPE", core ? core : "(unset)");
  benchmark::AddCustomContext(
      "dtype", lvs::text_encoder::BenchDtype() == torch::kBFloat16 ? "bfloat16"
                                                                   : "float32");
  benchmark::AddCustomContext("shape",
                              "batch 2 x 256 tokens, gemma-2-2b layers");
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
