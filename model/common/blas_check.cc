#include "model/common/blas_check.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lvs::common {

BlasReport CheckBlas(absl::string_view proc_maps, bool avx512,
                     const char* openblas_coretype) {
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
      (openblas_coretype == nullptr || *openblas_coretype == '\0')) {
    report.notes.push_back(
        "OpenBLAS on an AVX-512 CPU without OPENBLAS_CORETYPE: OpenBLAS "
        "0.3.21 may not recognise this CPU and fall back to SSE3 kernels; "
        "set OPENBLAS_CORETYPE=SkylakeX");
  }
  return report;
}

BlasReport CheckBlasHere() {
  std::ifstream in("/proc/self/maps");
  std::stringstream maps;
  maps << in.rdbuf();
  const bool avx512 = __builtin_cpu_supports("avx512f");
  return CheckBlas(maps.str(), avx512, std::getenv("OPENBLAS_CORETYPE"));
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
