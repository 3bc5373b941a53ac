// CPU run-time settings of the processes that run LibTorch on the CPU:
// intra-op thread count (all cores by default) and a one-line summary of
// what the process runs on (threads, BLAS core, bf16 matrix units), printed
// at start-up. The header is torch-free.
//
// Thread-safety: ConfigureCpuThreads changes process-wide LibTorch state;
// call it once at start-up before running models. The other functions are
// safe from any thread.
#ifndef LVS_MODEL_COMMON_CPU_RUNTIME_H_
#define LVS_MODEL_COMMON_CPU_RUNTIME_H_

#include <string>

namespace lvs::common {

// Cores this process may run on (its CPU affinity mask), at least 1.
int UsableCores();

// Sets LibTorch's intra-op threads to `threads`, or to UsableCores() when
// `threads` <= 0. Returns the count now in use.
int ConfigureCpuThreads(int threads);

// Whether the CPU has AVX512-BF16 and AMX-BF16 (oneDNN's bf16 paths).
bool CpuHasAvx512Bf16();
bool CpuHasAmxBf16();

// e.g. "threads=2 blas=OpenBLAS core=SkylakeX bf16=avx512_bf16,amx
// omp_wait=PASSIVE".
std::string CpuRuntimeSummary();

}  // namespace lvs::common

#endif  // LVS_MODEL_COMMON_CPU_RUNTIME_H_
