// Seeded noise: Philox4x32-10 known answers (Random123 kat_vectors),
// determinism, offset consistency, and rough N(0, 1) statistics.
#include "model/sampler/noise.h"

#include <cmath>

#include <gtest/gtest.h>

namespace lvs::sampler {
namespace {

TEST(NoiseTest, PhiloxKnownAnswers) {
  using A4 = std::array<uint32_t, 4>;
  EXPECT_EQ(Philox4x32x10({0, 0, 0, 0}, {0, 0}),
            (A4{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(Philox4x32x10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
                          {0xffffffff, 0xffffffff}),
            (A4{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(Philox4x32x10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
                          {0xa4093822, 0x299f31d0}),
            (A4{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(NoiseTest, FirstValuesAreFixedByTheFormat) {
  // Seed 0, block 0 is the first known answer above; Box-Muller by hand.
  const uint32_t r[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
  std::vector<float> want;
  for (int k = 0; k < 4; k += 2) {
    const double u1 = ((r[k] >> 8) + 1.0) / 16777216.0;
    const double u2 = (r[k + 1] >> 8) / 16777216.0;
    const double rad = std::sqrt(-2.0 * std::log(u1));
    want.push_back(static_cast<float>(rad * std::cos(2 * M_PI * u2)));
    want.push_back(static_cast<float>(rad * std::sin(2 * M_PI * u2)));
  }
  EXPECT_EQ(GaussianNoise(0, 4), want);
}

TEST(NoiseTest, DeterministicAndOffsetConsistent) {
  const std::vector<float> a = GaussianNoise(1234, 1001);
  EXPECT_EQ(a, GaussianNoise(1234, 1001));
  EXPECT_NE(a, GaussianNoise(1235, 1001));
  // A high seed word changes the stream too.
  EXPECT_NE(a, GaussianNoise(1234 + (uint64_t{1} << 32), 1001));
  // Any window of the stream equals the same window of a longer draw.
  for (int64_t offset : {0, 1, 3, 5, 998}) {
    std::vector<float> part(3);
    FillGaussianNoise(1234, offset, 3, part.data());
    for (int k = 0; k < 3; ++k) EXPECT_EQ(part[k], a[offset + k]) << offset;
  }
}

TEST(NoiseTest, RoughlyStandardNormal) {
  const int64_t n = 1 << 20;
  const std::vector<float> z = GaussianNoise(42, n);
  double sum = 0, sum2 = 0, sum4 = 0;
  int64_t beyond3 = 0;
  for (float v : z) {
    ASSERT_TRUE(std::isfinite(v));
    sum += v;
    sum2 += double(v) * v;
    sum4 += double(v) * v * v * v;
    if (std::abs(v) > 3) ++beyond3;
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 5e-3);  // ~5 standard errors
  EXPECT_NEAR(var, 1.0, 7e-3);
  EXPECT_NEAR(sum4 / n / (var * var), 3.0, 0.05);  // kurtosis
  // P(|z| > 3) = 0.0027.
  EXPECT_NEAR(double(beyond3) / n, 0.0027, 0.0004);
  // Neighbours are uncorrelated (lag 1 and lag 4).
  for (int lag : {1, 2, 4}) {
    double c = 0;
    for (int64_t i = 0; i + lag < n; ++i) c += double(z[i]) * z[i + lag];
    EXPECT_NEAR(c / n, 0.0, 5e-3) << "lag " << lag;
  }
}

}  // namespace
}  // namespace lvs::sampler
