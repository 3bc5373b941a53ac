// Per-stage time (text encoding, sampling, VAE decode) and peak RSS of the
// whole pipeline, fp32 on the CPU:
//  * tiny_e2e: the golden tiny checkpoints with the e2e case's request
//    (64x64, 16 frames, f24F96R960, 9 grid points);
//  * mid_random: randomly initialised mid-size models (DiT dim 512 x 4
//    layers, Gemma-2 width 256 x 4 layers, VAE channels 64-256) at 256x256,
//    16 frames, f24F96R960, 6 grid points.
// Counters are seconds per stage averaged over iterations.
// LVS_BENCH_DTYPE=bf16 runs the golden models and requests in bfloat16. The
// program fixes the OpenBLAS core itself and prints OPENBLAS_CORETYPE.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "bench/cpu/perf_control.h"
#include "model/common/blas_check.h"
#include "model/common/cpu_runtime.h"
#include "model/dit/dit_config.h"
#include "model/pipeline/pipeline.h"

namespace lvs::pipeline {
namespace {

const std::string kGolden = LVS_GOLDEN_DIR;

// LVS_BENCH_DTYPE: "bf16" or float32 (default); the mid-size models stay
// float32.
Precision BenchPrecision() {
  const char* env = std::getenv("LVS_BENCH_DTYPE");
  return env && std::string(env) == "bf16" ? Precision::kBFloat16
                                           : Precision::kFloat32;
}

GenerationRequest E2eRequest(int size, int steps) {
  GenerationRequest r;
  r.prompt =
      "A red panda eats bamboo in a snowy forest, snowflakes settling "
      "on its fur.";
  r.width = size;
  r.height = size;
  r.frames = 16;
  r.fps = 8;
  r.sample_config = "f24F96R960";
  r.grid_points = steps;
  r.seed = 1;
  r.precision = BenchPrecision();
  return r;
}

PipelineOptions GoldenOptions() {
  PipelineOptions o;
  o.dit_dir = kGolden + "/dit";
  o.text_encoder_dir = kGolden + "/text_encoder";
  o.vae_dir = kGolden + "/vae";
  o.precision = BenchPrecision();
  return o;
}

Pipeline& TinyPipeline() {
  static Pipeline* p = Pipeline::Create(GoldenOptions()).value().release();
  return *p;
}

// Random mid-size models with the golden tokenizer.
Pipeline& MidPipeline() {
  static Pipeline* p = [] {
    torch::manual_seed(0);
    Pipeline::Models m;
    m.tokenizer = text_encoder::Tokenizer::Create(
                      kGolden + "/text_encoder/tokenizer.model")
                      .value();
    text_encoder::Gemma2Config g;
    g.vocab_size = m.tokenizer->vocab_size();
    g.hidden_size = 256;
    g.intermediate_size = 1024;
    g.num_hidden_layers = 4;
    g.num_attention_heads = 4;
    g.num_key_value_heads = 2;
    g.head_dim = 64;
    g.query_pre_attn_scalar = 64;
    g.attn_logit_softcapping = 50.0;
    g.sliding_window = 4096;
    text_encoder::Gemma2Model gm(g, g.num_hidden_layers - 1, false);
    gm->eval();
    m.encoder = std::make_unique<text_encoder::Gemma2Encoder>(
        g, gm, text_encoder::TextEncoderOptions{});
    dit::DiTConfig d =
        dit::DiTConfigFromArgs({{"model", "MultiScaleNextDiT_mid"},
                                {"dim", 512},
                                {"n_layers", 4},
                                {"n_heads", 8},
                                {"n_kv_heads", 4},
                                {"multiple_of", 64},
                                {"cap_feat_dim", 256},
                                {"qk_norm", true},
                                {"patch_sizes", {2, 2, 4}},
                                {"f_patch_sizes", {1, 2, 2}},
                                {"rope_theta", 256.0},
                                {"t_scale", 1000.0},
                                {"motion_scale", 20.0}},
                               "bench")
            .value();
    m.dit = dit::MultiScaleNextDiT(d);
    m.dit->eval();
    vae::VaeConfig v;
    v.block_out_channels = {64, 128, 128, 256};
    v.layers_per_block = 1;
    v.norm_num_groups = 32;
    m.vae = vae::CogVideoXVae::CreateRandom(v, vae::VaeOptions{}).value();
    PipelineOptions o;
    o.precision = Precision::kFloat32;
    return Pipeline::FromModels(o, std::move(m)).value().release();
  }();
  return *p;
}

void RunStages(benchmark::State& state, Pipeline& pipe,
               const GenerationRequest& request) {
  std::map<std::string, double> seconds, peak;
  for (auto _ : state) {
    bench::PerfEnable();
    auto result = pipe.Generate(request, {});
    bench::PerfDisable();
    if (!result.ok()) {
      state.SkipWithError(result.status().ToString().c_str());
      return;
    }
    for (const StageReport& s : result->stages) {
      seconds[s.name] += s.seconds;
      peak[s.name] = std::max(peak[s.name], s.peak_rss_bytes / 1048576.0);
    }
  }
  for (const auto& [name, s] : seconds) {
    state.counters[name + "_s"] =
        benchmark::Counter(s / static_cast<double>(state.iterations()));
    state.counters[name + "_peak_rss_MiB"] = peak[name];
  }
  state.counters["torch_threads"] = torch::get_num_threads();
}

void BM_TinyE2E(benchmark::State& state) {
  RunStages(state, TinyPipeline(), E2eRequest(64, 9));
}
BENCHMARK(BM_TinyE2E)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(3);

void BM_MidRandom(benchmark::State& state) {
  GenerationRequest request = E2eRequest(256, 6);
  request.precision = Precision::kFloat32;
  RunStages(state, MidPipeline(), request);
}
BENCHMARK(BM_MidRandom)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(1);

}  // namespace
}  // namespace lvs::pipeline

int main(int argc, char** argv) {
  // Before any BLAS call or thread: may re-execute the program.
  lvs::common::EnsureOpenBlasCore(argv);
  // LibTorch's intra-op threads as the worker sets them: all usable cores,
  // or LVS_BENCH_THREADS.
  const char* threads = std::getenv("LVS_BENCH_THREADS");
  lvs::common::ConfigureCpuThreads(threads ? std::atoi(threads) : 0);
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  std::printf("OPENBLAS_CORETYPE=%s\n", core ? core : "(unset)");
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
