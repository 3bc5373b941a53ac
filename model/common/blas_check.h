// Start-up check of the BLAS library LibTorch runs on (torch-free).
//
// Debian's libtorch links `libblas.so.3`, which the alternatives system
// resolves to OpenBLAS or to the (~10x slower) reference BLAS. The check
// reads the process's memory map to see which one is loaded, and whether an
// OpenBLAS on an AVX-512 CPU runs without OPENBLAS_CORETYPE (OpenBLAS 0.3.21
// does not recognise newer AVX-512 CPUs and falls back to SSE3 kernels).
//
// Thread-safety: pure functions plus LogBlasWarnings, which only writes to
// stderr; safe to call from any thread.
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
// (nullptr when unset).
BlasReport CheckBlas(absl::string_view proc_maps, bool avx512,
                     const char* openblas_coretype);

// Runs CheckBlas on this process (/proc/self/maps, cpuid, environment).
BlasReport CheckBlasHere();

// Writes CheckBlasHere()'s warnings and notes to stderr, one line each.
// Executables call it at start-up, after LibTorch is loaded.
void LogBlasWarnings();

}  // namespace lvs::common

#endif  // LVS_MODEL_COMMON_BLAS_CHECK_H_
