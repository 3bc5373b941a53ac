#include "model/common/blas_check.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lvs::common {

BlasReport CheckBlas(absl::string_view proc_maps, bool avx512,
                     const char* openblas_coretype,
                     absl::string_view openblas_core) {
  BlasReport report;
  for (absl::string_view line : absl::StrSplit(proc_maps, '\n')) {
    const size_t slash = line.find('/');
    if (slash == absl::string_view::npos) continue;
    const absl::string_view path = line.substr(slash);
    const size_t base = path.rfind('/');
    const absl::string_view file = path.substr(base + 1);
    if (absl::StrContains(path, "openblas") &&
        (absl::StartsWith(file, "libopenblas") ||
         absl::StartsWith(file, "libblas.so"))) {
      report.kind = BlasKind::kOpenBlas;
      report.library = std::string(path);
      break;
    }
    if (absl::StartsWith(file, "libblas.so") &&
        absl::EndsWith(path.substr(0, base), "/blas")) {
      report.kind = BlasKind::kReference;
      report.library = std::string(path);
    }
  }
  if (report.kind == BlasKind::kReference) {
    report.warnings.push_back(absl::StrCat(
        "LibTorch is running on the reference BLAS (", report.library,
        "), which is many times slower than OpenBLAS; fix: apt-get install "
        "libopenblas0-pthread (or update-alternatives --config "
        "libblas.so.3-x86_64-linux-gnu)"));
  }
  if (report.kind == BlasKind::kOpenBlas && avx512 &&
      (openblas_coretype == nullptr || *openblas_coretype == '\0') &&
      IsOpenBlasFallback(openblas_core, avx512)) {
    // EnsureOpenBlasCore did not run or could not re-execute.
    report.warnings.push_back(
        "OpenBLAS runs its SSE3 fallback kernels on this AVX-512 CPU "
        "(about 4x slower GEMM); OPENBLAS_CORETYPE=SkylakeX fixes it");
  }
  return report;
}

BlasReport CheckBlasHere() {
  std::ifstream in("/proc/self/maps");
  std::stringstream maps;
  maps << in.rdbuf();
  const bool avx512 = __builtin_cpu_supports("avx512f");
  return CheckBlas(maps.str(), avx512, std::getenv("OPENBLAS_CORETYPE"),
                   OpenBlasCoreName());
}

std::string OpenBlasCoreName() {
  using CoreNameFn = char* (*)();
  auto fn = reinterpret_cast<CoreNameFn>(
      dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (fn == nullptr) return "";
  const char* name = fn();
  return name == nullptr ? "" : std::string(name);
}

bool IsOpenBlasFallback(absl::string_view core, bool avx512) {
  if (!avx512 || core.empty()) return false;
  const std::string lower = absl::AsciiStrToLower(core);
  // OpenBLAS's AVX-512 cores; everything else wastes the vector units.
  for (absl::string_view fast : {"skylakex", "cooperlake", "sapphirerapids"}) {
    if (lower == fast) return false;
  }
  return true;
}

void EnsureOpenBlasCore(char** argv) {
  EnsureOpenBlasCoreFor(argv, OpenBlasCoreName());
}

void EnsureOpenBlasCoreFor(char** argv, absl::string_view core) {
  // Guards against a loop should the variables not take effect.
  constexpr char kGuard[] = "LVS_OPENBLAS_REEXEC";
  const bool reexecuted = std::getenv(kGuard) != nullptr;
  unsetenv(kGuard);
  if (reexecuted) return;
  const bool set_core =
      std::getenv("OPENBLAS_CORETYPE") == nullptr &&
      IsOpenBlasFallback(core, __builtin_cpu_supports("avx512f"));
  // OpenMP threads that spin between LibTorch's parallel regions take the
  // cores from OpenBLAS's threads (and the reverse): waiting passively made
  // a 2-core DiT forward about 2x faster. Read only at load, like
  // OPENBLAS_CORETYPE; a user's value wins.
  const bool set_wait = std::getenv("OMP_WAIT_POLICY") == nullptr;
  if (!set_core && !set_wait) return;
  if (set_core) setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
  if (set_wait) setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  setenv(kGuard, "1", 1);
  execv("/proc/self/exe", argv);
  // Still here: run on as started.
  unsetenv(kGuard);
  if (set_core) unsetenv("OPENBLAS_CORETYPE");
  if (set_wait) unsetenv("OMP_WAIT_POLICY");
  std::fprintf(stderr,
               "lvs: note: could not re-execute with OPENBLAS_CORETYPE / "
               "OMP_WAIT_POLICY set; running on as started\n");
}

void LogBlasWarnings() {
  const BlasReport report = CheckBlasHere();
  for (const std::string& w : report.warnings) {
    std::fprintf(stderr, "lvs: warning: %s\n", w.c_str());
  }
  for (const std::string& n : report.notes) {
    std::fprintf(stderr, "lvs: note: %s\n", n.c_str());
  }
}

}  // namespace lvs::common
