// A program started without OPENBLAS_CORETYPE on an AVX-512 CPU where
// OpenBLAS picked a fallback core re-executes itself onto the SkylakeX
// kernels; a value the user set wins.
#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace {

std::string RunProbe(const std::string& env, const std::string& args = "") {
  const std::string cmd = env + " " LVS_OPENBLAS_PROBE " " + args;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return "popen failed";
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

TEST(BlasReexec, UnsetVariableEndsOnSkylakeXKernels) {
  if (!__builtin_cpu_supports("avx512f")) GTEST_SKIP() << "no AVX-512";
  const std::string out = RunProbe("env -u OPENBLAS_CORETYPE");
  EXPECT_EQ(out.substr(0, out.find(' ')), "core=SkylakeX") << out;
}

TEST(BlasReexec, FallbackCoreReexecutesWithTheVariable) {
  if (!__builtin_cpu_supports("avx512f")) GTEST_SKIP() << "no AVX-512";
  // Started without the variable; it is set in the output only if the
  // program re-executed itself.
  EXPECT_EQ(RunProbe("env -u OPENBLAS_CORETYPE", "--pretend-core=Prescott"),
            "core=SkylakeX var=SkylakeX");
}

TEST(BlasReexec, OpenMpWaitBecomesPassiveUnlessSet) {
  if (!__builtin_cpu_supports("avx512f")) GTEST_SKIP() << "no AVX-512";
  EXPECT_EQ(RunProbe("env -u OPENBLAS_CORETYPE -u OMP_WAIT_POLICY",
                     "--pretend-core=Prescott --wait"),
            "core=SkylakeX var=SkylakeX wait=PASSIVE");
  EXPECT_EQ(RunProbe("env -u OPENBLAS_CORETYPE OMP_WAIT_POLICY=ACTIVE",
                     "--pretend-core=Prescott --wait"),
            "core=SkylakeX var=SkylakeX wait=ACTIVE");
  // A recognised core still gets the passive wait.
  EXPECT_EQ(RunProbe("env -u OPENBLAS_CORETYPE -u OMP_WAIT_POLICY",
                     "--pretend-core=SkylakeX --wait"),
            "core=SkylakeX var=(unset) wait=PASSIVE");
}

TEST(BlasReexec, UsersSettingWins) {
  EXPECT_EQ(
      RunProbe("env OPENBLAS_CORETYPE=Haswell", "--pretend-core=Prescott"),
      "core=Haswell var=Haswell");
}

TEST(BlasReexec, RecognisedCoreRunsOnUnchanged) {
  if (!__builtin_cpu_supports("avx512f")) GTEST_SKIP() << "no AVX-512";
  EXPECT_EQ(RunProbe("env -u OPENBLAS_CORETYPE", "--pretend-core=SkylakeX"),
            RunProbe("env -u OPENBLAS_CORETYPE LVS_OPENBLAS_REEXEC=1"));
}

}  // namespace
