// The start-up BLAS check: which library a memory map shows, and the
// warning or note it gives.
#include "model/common/blas_check.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lvs::common {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kReferenceMaps[] =
    "7f0000000000-7f0000001000 r--p 00000000 08:01 123 /usr/lib/x86_64-linux-"
    "gnu/libtorch_cpu.so.1.13\n"
    "7f0000002000-7f0000003000 r-xp 00000000 08:01 124 /usr/lib/x86_64-linux-"
    "gnu/blas/libblas.so.3.11.0\n";
constexpr char kOpenBlasMaps[] =
    "7f0000000000-7f0000001000 r--p 00000000 08:01 123 [heap]\n"
    "7f0000002000-7f0000003000 r-xp 00000000 08:01 124 /usr/lib/x86_64-linux-"
    "gnu/openblas-pthread/libblas.so.3\n"
    "7f0000004000-7f0000005000 r-xp 00000000 08:01 125 /usr/lib/x86_64-linux-"
    "gnu/openblas-pthread/libopenblasp-r0.3.21.so\n";

TEST(BlasCheck, ReferenceBlasWarnsWithTheFix) {
  BlasReport r = CheckBlas(kReferenceMaps, /*avx512=*/true, nullptr, "");
  EXPECT_EQ(r.kind, BlasKind::kReference);
  EXPECT_EQ(r.library, "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0");
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_THAT(r.warnings[0], HasSubstr("apt-get install libopenblas0-pthread"));
  EXPECT_THAT(r.notes, IsEmpty());
}

TEST(BlasCheck, OpenBlasFallbackCoreOnAvx512Warns) {
  BlasReport r = CheckBlas(kOpenBlasMaps, /*avx512=*/true, nullptr, "Prescott");
  EXPECT_EQ(r.kind, BlasKind::kOpenBlas);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_THAT(r.warnings[0], HasSubstr("OPENBLAS_CORETYPE=SkylakeX"));
  EXPECT_THAT(r.notes, IsEmpty());
}

TEST(BlasCheck, OpenBlasOnItsAvx512CoreIsQuiet) {
  BlasReport r = CheckBlas(kOpenBlasMaps, /*avx512=*/true, nullptr, "SkylakeX");
  EXPECT_THAT(r.warnings, IsEmpty());
  EXPECT_THAT(r.notes, IsEmpty());
}

TEST(BlasCheck, FallbackCores) {
  EXPECT_TRUE(IsOpenBlasFallback("Prescott", true));
  EXPECT_TRUE(IsOpenBlasFallback("Haswell", true));
  EXPECT_FALSE(IsOpenBlasFallback("SkylakeX", true));
  EXPECT_FALSE(IsOpenBlasFallback("Cooperlake", true));
  EXPECT_FALSE(IsOpenBlasFallback("Prescott", false));
  EXPECT_FALSE(IsOpenBlasFallback("", true));
}

TEST(BlasCheck, OpenBlasWithCoretypeOrWithoutAvx512IsQuiet) {
  BlasReport set =
      CheckBlas(kOpenBlasMaps, /*avx512=*/true, "SkylakeX", "Prescott");
  EXPECT_THAT(set.notes, IsEmpty());
  EXPECT_THAT(set.warnings, IsEmpty());
  BlasReport no_avx =
      CheckBlas(kOpenBlasMaps, /*avx512=*/false, nullptr, "Prescott");
  EXPECT_THAT(no_avx.notes, IsEmpty());
}

TEST(BlasCheck, NoBlasMappedIsQuiet) {
  BlasReport r =
      CheckBlas("7f00-7f01 r--p 0 0:0 0 [stack]\n", true, nullptr, "");
  EXPECT_EQ(r.kind, BlasKind::kNone);
  EXPECT_THAT(r.warnings, IsEmpty());
  EXPECT_THAT(r.notes, IsEmpty());
}

TEST(BlasCheck, ThisProcessHasNoBlas) {
  // This test binary links no BLAS, so the live check must find none.
  EXPECT_EQ(CheckBlasHere().kind, BlasKind::kNone);
}

}  // namespace
}  // namespace lvs::common
