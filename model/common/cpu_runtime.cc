#include "model/common/cpu_runtime.h"

#include <sched.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "model/common/blas_check.h"
#include "model/common/cpu_buffer_cache.h"

namespace lvs::common {
namespace {

// The "flags" line of /proc/cpuinfo ("" when unreadable).
std::string CpuFlags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "flags")) return line + " ";
  }
  return "";
}

}  // namespace

int UsableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return 1;
}

int ConfigureCpuThreads(int threads) {
  InstallCpuBufferCache();
  at::set_num_threads(threads > 0 ? threads : UsableCores());
  return at::get_num_threads();
}

bool CpuHasAvx512Bf16() {
  return absl::StrContains(CpuFlags(), " avx512_bf16 ");
}

bool CpuHasAmxBf16() { return absl::StrContains(CpuFlags(), " amx_bf16 "); }

std::string CpuRuntimeSummary() {
  const BlasReport blas = CheckBlasHere();
  const char* kind = blas.kind == BlasKind::kOpenBlas    ? "OpenBLAS"
                     : blas.kind == BlasKind::kReference ? "reference"
                                                         : "none";
  std::string core = OpenBlasCoreName();
  std::string bf16;
  if (CpuHasAvx512Bf16()) bf16 = "avx512_bf16";
  if (CpuHasAmxBf16()) absl::StrAppend(&bf16, bf16.empty() ? "" : ",", "amx");
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  return absl::StrCat("threads=", at::get_num_threads(), " blas=", kind,
                      " core=", core.empty() ? "-" : core,
                      " bf16=", bf16.empty() ? "none" : bf16,
                      " omp_wait=", wait == nullptr ? "default" : wait);
}

}  // namespace lvs::common
