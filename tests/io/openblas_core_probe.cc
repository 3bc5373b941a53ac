// openblas_core_probe: a program linked against OpenBLAS the way LibTorch
// is. It runs EnsureOpenBlasCore first thing and prints the OpenBLAS core it
// ends up on and OPENBLAS_CORETYPE ("core=X var=Y"). With --pretend-core=C
// it decides as if OpenBLAS had picked core C (exercises the re-execution on
// CPUs OpenBLAS recognises). A later --wait argument adds OMP_WAIT_POLICY
// (" wait=Z"). Used by blas_reexec_test.
//
// Thread-safety: a single-threaded command-line program.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "model/common/blas_check.h"

extern "C" char* openblas_get_corename(void);

int main(int argc, char** argv) {
  constexpr char kPretend[] = "--pretend-core=";
  if (argc > 1 && std::strncmp(argv[1], kPretend, sizeof(kPretend) - 1) == 0) {
    lvs::common::EnsureOpenBlasCoreFor(argv, argv[1] + sizeof(kPretend) - 1);
  } else {
    lvs::common::EnsureOpenBlasCore(argv);
  }
  const char* var = std::getenv("OPENBLAS_CORETYPE");
  std::printf("core=%s var=%s", openblas_get_corename(),
              var == nullptr ? "(unset)" : var);
  if (argc > 2 && std::strcmp(argv[2], "--wait") == 0) {
    const char* wait = std::getenv("OMP_WAIT_POLICY");
    std::printf(" wait=%s", wait == nullptr ? "(unset)" : wait);
  }
  std::printf("\n");
  return 0;
}
