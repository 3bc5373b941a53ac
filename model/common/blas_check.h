// Start-up check of the BLAS library LibTorch runs on (torch-free).
//
// Debian's libtorch links `libblas.so.3`, which the alternatives system
// resolves to OpenBLAS or to the (~10x slower) reference BLAS. The check
// reads the process's memory map to see which one is loaded, and whether an
// OpenBLAS on an AVX-512 CPU runs without OPENBLAS_CORETYPE (OpenBLAS 0.3.21
// does not recognise newer AVX-512 CPUs and falls back to SSE3 kernels).
//
// EnsureOpenBlasCore fixes the SSE3 fallback itself: called first thing in
// main(), it re-executes the program with OPENBLAS_CORETYPE=SkylakeX when the
// fallback applies, and with OMP_WAIT_POLICY=PASSIVE (a value the user set
// always wins).
//
// Thread-safety: pure functions plus LogBlasWarnings, which only writes to
// stderr; safe to call from any thread. EnsureOpenBlasCore must run before
// any other thread starts (it may replace the process image).
#ifndef LVS_MODEL_COMMON_BLAS_CHECK_H_
#define LVS_MODEL_COMMON_BLAS_CHECK_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace lvs::common {

// Which BLAS a process has mapped.
enum class BlasKind { kNone, kOpenBlas, kReference };

// What CheckBlas found.
struct BlasReport {
  BlasKind kind = BlasKind::kNone;
  // The mapped library file ("" for kNone).
  std::string library;
  // Problems that cost real speed, each naming its fix.
  std::vector<std::string> warnings;
  // Tuning suggestions.
  std::vector<std::string> notes;
};

// Inspects `proc_maps` (the text of /proc/<pid>/maps). `avx512` says whether
// the CPU has AVX-512F; `openblas_coretype` is the OPENBLAS_CORETYPE value
// (nullptr when unset); `openblas_core` is the core OpenBLAS runs on ("" when
// unknown).
BlasReport CheckBlas(absl::string_view proc_maps, bool avx512,
                     const char* openblas_coretype,
                     absl::string_view openblas_core);

// Runs CheckBlas on this process (/proc/self/maps, cpuid, environment).
BlasReport CheckBlasHere();

// The OpenBLAS core this process runs on (openblas_get_corename(), e.g.
// "SkylakeX", "Prescott"); "" when OpenBLAS is not loaded.
std::string OpenBlasCoreName();

// True when OpenBLAS `core` is an SSE/AVX2-era fallback on a CPU with
// AVX-512F (`avx512`), i.e. when OPENBLAS_CORETYPE=SkylakeX would be faster.
bool IsOpenBlasFallback(absl::string_view core, bool avx512);

// Sets, before the libraries that read them load, what LibTorch needs to run
// fast on the CPU, and re-executes /proc/self/exe with `argv` when it set
// anything: OPENBLAS_CORETYPE=SkylakeX when OpenBLAS is loaded on an
// AVX-512 CPU, runs a fallback core and the variable is unset; and
// OMP_WAIT_POLICY=PASSIVE when unset (LibTorch's OpenMP threads then sleep
// instead of spinning against OpenBLAS's threads). A user's value always
// wins. Returns normally otherwise, or if the re-execution fails (with a
// note on stderr). Call it first thing in main(), before any BLAS call or
// thread.
void EnsureOpenBlasCore(char** argv);

// EnsureOpenBlasCore deciding on `core` instead of the core OpenBLAS reports
// (lets a test take the re-execution path on a CPU OpenBLAS recognises).
void EnsureOpenBlasCoreFor(char** argv, absl::string_view core);

// Writes CheckBlasHere()'s warnings and notes to stderr, one line each.
// Executables call it at start-up, after LibTorch is loaded.
void LogBlasWarnings();

}  // namespace lvs::common

#endif  // LVS_MODEL_COMMON_BLAS_CHECK_H_
