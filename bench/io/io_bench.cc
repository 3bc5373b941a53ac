// Checkpoint loading speed on the golden tiny checkpoints: safetensors
// (zero-copy mmap), torch.save archives through the whitelisting unpickler
// (fp32, and bf16 with shared storages and strided views), the pickle VM
// alone, and model_args parsing. OPENBLAS_CORETYPE is
// reported in the context (loading does not use BLAS).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "model/common/blas_check.h"
#include "model/io/checkpoint.h"
#include "model/io/torch_pickle.h"

namespace {

const std::string kGolden = LVS_GOLDEN_DIR;

void BM_LoadCheckpoint(benchmark::State& state, const std::string& file) {
  const std::string path = kGolden + file;
  int64_t bytes = 0;
  for (auto _ : state) {
    auto t = lvs::io::LoadCheckpoint(path);
    if (!t.ok()) {
      state.SkipWithError(std::string(t.status().message()).c_str());
      return;
    }
    bytes = 0;
    for (const auto& [name, tensor] : *t) bytes += tensor.nbytes();
    benchmark::DoNotOptimize(bytes);
  }
  state.SetBytesProcessed(state.iterations() * bytes);
}
BENCHMARK_CAPTURE(BM_LoadCheckpoint, dit_safetensors,
                  std::string("/dit/consolidated.00-of-01.safetensors"));
BENCHMARK_CAPTURE(BM_LoadCheckpoint, dit_pth_fp32,
                  std::string("/extras/consolidated.00-of-01.pth"));
BENCHMARK_CAPTURE(BM_LoadCheckpoint, dit_pth_bf16_views,
                  std::string("/extras/consolidated_bf16_views.00-of-01.pth"));
BENCHMARK_CAPTURE(BM_LoadCheckpoint, text_encoder_sharded,
                  std::string("/text_encoder"));

void BM_ParseTorchArchive(benchmark::State& state) {
  auto zip = lvs::io::ZipArchive::Open(
      kGolden + "/extras/consolidated_bf16_views.00-of-01.pth");
  if (!zip.ok()) {
    state.SkipWithError("cannot open fixture");
    return;
  }
  for (auto _ : state) {
    auto a = lvs::io::ParseTorchArchive(*zip);
    benchmark::DoNotOptimize(a.ok());
  }
}
BENCHMARK(BM_ParseTorchArchive);

void BM_ReadPickledArgs(benchmark::State& state) {
  for (auto _ : state) {
    auto j = lvs::io::ReadPickledArgs(kGolden + "/dit/model_args.pth");
    benchmark::DoNotOptimize(j.ok());
  }
}
BENCHMARK(BM_ReadPickledArgs);

}  // namespace

int main(int argc, char** argv) {
  // Before any BLAS call or thread: may re-execute the program.
  lvs::common::EnsureOpenBlasCore(argv);
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  benchmark::AddCustomContext("OPENBLAS_CORETYPE", core ? core : "(unset)");
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
