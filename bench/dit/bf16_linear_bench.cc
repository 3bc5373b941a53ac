// The 2B DiT's linear layers on the CPU, one product per call, at the shapes
// one forward runs them (latent 16x4x32x32 -> 1024 tokens, 256 caption
// tokens; see model/dit/config_2b.h):
//   wq, wo      [1024, 2304] x [2304, 2304]
//   wk, wv      [1024, 2304] x [2304, 1152]  (8 kv heads of 144)
//   w1, w3      [1024, 2304] x [2304, 6144]
//   w2          [1024, 6144] x [6144, 2304]
//   wk_y, wv_y  [256, 2304] x [2304, 1152]  (caption tokens)
//   adaLN       [1, 1024] x [1024, 9216]    (one row per item)
// Ways of computing y = x W^T, each a benchmark:
//   torch_bf16     torch::linear on bf16 tensors (LibTorch 1.13's path: a
//                  oneDNN matmul that re-packs the weight on every call)
//   dnnl_packed    oneDNN matmul bf16 x bf16 -> bf16 with the weight reordered
//                  ONCE, outside the timed loop, into the layout the primitive
//                  prefers (format_tag::any)
//   dnnl_packed_f32  the same with a float32 result
//   dnnl_plain     oneDNN matmul bf16 x bf16 -> bf16 on the weight as stored
//                  ([out, in] row-major, read as its transpose): the
//                  primitive is built once, the weight is not pre-packed
//   torch_f32      torch::linear in float32 (OpenBLAS SkylakeX sgemm)
// Counters: GFLOP_per_s (wall) and GFLOP_per_cpu_s (2*M*K*N per CPU-second
// of the whole process, steadier on a shared machine).
// LibTorch's and oneDNN's OpenMP threads: LVS_BENCH_THREADS (default all
// usable cores). The program fixes the OpenBLAS core itself.
#include <benchmark/benchmark.h>
#include <time.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "model/common/blas_check.h"
#include "model/common/cpu_runtime.h"
#include "model/dit/config_2b.h"

#ifdef LVS_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace lvs::dit {
namespace {

struct Shape {
  std::string name;
  int64_t m, k, n;
};

// The distinct linear shapes of one 2B DiT forward (see the file comment).
const std::vector<Shape>& Shapes() {
  static const std::vector<Shape>* shapes = [] {
    const DiTConfig c = Config2B(1);
    const int64_t kv = c.n_kv_heads * c.head_dim(), ffn = c.ffn_hidden_dim();
    const int64_t tokens = 1024, caption = 256;
    return new std::vector<Shape>{
        {"wq_wo", tokens, c.dim, c.dim},
        {"wk_wv", tokens, c.dim, kv},
        {"w1_w3", tokens, c.dim, ffn},
        {"w2", tokens, ffn, c.dim},
        {"wky_wvy", caption, c.cap_feat_dim, kv},
        {"adaLN", 1, c.adaln_dim(), 4 * c.dim},
    };
  }();
  return *shapes;
}

double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Runs `step` in the timed loop and sets the counters.
template <typename F>
void Measure(benchmark::State& state, const Shape& s, F step) {
  step();  // Warm-up: primitive creation, caches, first-touch.
  const double cpu0 = ProcessCpuSeconds();
  for (auto _ : state) step();
  const double cpu = ProcessCpuSeconds() - cpu0;
  const double flop = 2.0 * s.m * s.k * s.n;
  state.counters["GFLOP_per_s"] = benchmark::Counter(
      flop / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP_per_cpu_s"] = flop * state.iterations() / cpu / 1e9;
  state.SetLabel(s.name + " " + std::to_string(s.m) + "x" +
                 std::to_string(s.k) + "x" + std::to_string(s.n));
}

void BM_TorchLinear(benchmark::State& state, torch::ScalarType type) {
  torch::NoGradGuard no_grad;
  const Shape& s = Shapes()[state.range(0)];
  torch::Tensor x = torch::randn({s.m, s.k}).to(type);
  torch::Tensor w = (torch::randn({s.n, s.k}) * 0.02).to(type);
  torch::Tensor y;
  Measure(state, s, [&] {
    y = torch::linear(x, w);
    benchmark::DoNotOptimize(y.data_ptr());
  });
}

#ifdef LVS_HAVE_DNNL
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dnnl::matmul::primitive_desc MatmulDesc(const dnnl::engine& engine,
                                        const dnnl::memory::desc& a,
                                        const dnnl::memory::desc& b,
                                        const dnnl::memory::desc& c) {
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::matmul::primitive_desc(engine, a, b, c);
#else
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), engine);
#endif
}

// `packed`: the weight reordered once to the primitive's layout; else the
// weight [N, K] row-major read in place as its transpose [K, N].
void BM_Dnnl(benchmark::State& state, bool packed, dt out_type) {
  if (!common::CpuHasAvx512Bf16() && !common::CpuHasAmxBf16()) {
    state.SkipWithError("no native bf16 on this CPU");
    return;
  }
  const Shape& s = Shapes()[state.range(0)];
  torch::Tensor x = torch::randn({s.m, s.k}).to(torch::kBFloat16);
  torch::Tensor w = (torch::randn({s.n, s.k}) * 0.02).to(torch::kBFloat16);
  torch::Tensor y = torch::empty(
      {s.m, s.n}, out_type == dt::f32 ? torch::kFloat32 : torch::kBFloat16);
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const dnnl::memory::desc x_md({s.m, s.k}, dt::bf16, tag::ab);
  const dnnl::memory::desc w_plain({s.k, s.n}, dt::bf16, tag::ba);
  const dnnl::memory::desc y_md({s.m, s.n}, out_type, tag::ab);
  const dnnl::memory::desc w_any({s.k, s.n}, dt::bf16, tag::any);
  const dnnl::matmul::primitive_desc pd =
      MatmulDesc(engine, x_md, packed ? w_any : w_plain, y_md);
  dnnl::matmul prim(pd);
  dnnl::memory x_mem(x_md, engine, x.data_ptr());
  dnnl::memory y_mem(y_md, engine, y.data_ptr());
  dnnl::memory w_mem(w_plain, engine, w.data_ptr());
  if (packed && pd.weights_desc() != w_plain) {
    dnnl::memory w_packed(pd.weights_desc(), engine);
    dnnl::reorder(w_mem, w_packed).execute(stream, w_mem, w_packed);
    stream.wait();
    w_mem = w_packed;
  }
  state.counters["packed_MB"] =
      static_cast<double>(pd.weights_desc().get_size()) / 1048576.0;
  Measure(state, s, [&] {
    prim.execute(stream, {{DNNL_ARG_SRC, x_mem},
                          {DNNL_ARG_WEIGHTS, w_mem},
                          {DNNL_ARG_DST, y_mem}});
    stream.wait();
    benchmark::DoNotOptimize(y.data_ptr());
  });
}
#endif  // LVS_HAVE_DNNL

void Shapes_(benchmark::internal::Benchmark* b) {
  for (size_t i = 0; i < Shapes().size(); ++i) b->Arg(static_cast<int>(i));
  b->ArgName("shape")->UseRealTime()->MinTime(0.5)->Unit(
      benchmark::kMillisecond);
}

BENCHMARK_CAPTURE(BM_TorchLinear, torch_bf16, torch::kBFloat16)->Apply(Shapes_);
#ifdef LVS_HAVE_DNNL
BENCHMARK_CAPTURE(BM_Dnnl, dnnl_packed, true, dt::bf16)->Apply(Shapes_);
BENCHMARK_CAPTURE(BM_Dnnl, dnnl_packed_f32, true, dt::f32)->Apply(Shapes_);
BENCHMARK_CAPTURE(BM_Dnnl, dnnl_plain, false, dt::bf16)->Apply(Shapes_);
#endif
BENCHMARK_CAPTURE(BM_TorchLinear, torch_f32, torch::kFloat32)->Apply(Shapes_);

}  // namespace
}  // namespace lvs::dit

int main(int argc, char** argv) {
  // Before any BLAS call or thread: may re-execute the program.
  lvs::common::EnsureOpenBlasCore(argv);
  const char* threads = std::getenv("LVS_BENCH_THREADS");
  lvs::common::ConfigureCpuThreads(threads ? std::atoi(threads) : 0);
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  std::printf("OPENBLAS_CORETYPE=%s, torch threads=%d, %s\n",
              core ? core : "(unset)", torch::get_num_threads(),
              lvs::common::CpuRuntimeSummary().c_str());
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
