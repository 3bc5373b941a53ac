#include "model/sampler/noise.h"

#include <cmath>

namespace lvs::sampler {
namespace {

constexpr uint32_t kMul0 = 0xD2511F53u;
constexpr uint32_t kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;
constexpr uint32_t kWeyl1 = 0xBB67AE85u;
constexpr double kTwoPi = 6.283185307179586476925286766559;
constexpr double kInv2To24 = 1.0 / 16777216.0;

inline void MulHiLo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  *lo = static_cast<uint32_t>(p);
}

// Two normals from two 32-bit words (see the header for the exact recipe).
inline void BoxMuller(uint32_t a, uint32_t b, float* z0, float* z1) {
  const double u1 = (static_cast<double>(a >> 8) + 1.0) * kInv2To24;
  const double u2 = static_cast<double>(b >> 8) * kInv2To24;
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = kTwoPi * u2;
  *z0 = static_cast<float>(radius * std::cos(angle));
  *z1 = static_cast<float>(radius * std::sin(angle));
}

}  // namespace

std::array<uint32_t, 4> Philox4x32x10(std::array<uint32_t, 4> ctr,
                                      std::array<uint32_t, 2> key) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += kWeyl0;
      key[1] += kWeyl1;
    }
    uint32_t hi0, lo0, hi1, lo1;
    MulHiLo(kMul0, ctr[0], &hi0, &lo0);
    MulHiLo(kMul1, ctr[2], &hi1, &lo1);
    ctr = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
  }
  return ctr;
}

void FillGaussianNoise(uint64_t seed, int64_t offset, int64_t count,
                       float* out) {
  const std::array<uint32_t, 2> key = {static_cast<uint32_t>(seed),
                                       static_cast<uint32_t>(seed >> 32)};
  int64_t i = 0;
  while (i < count) {
    const int64_t element = offset + i;
    const uint64_t block = static_cast<uint64_t>(element) / 4;
    const int first = static_cast<int>(element % 4);
    const std::array<uint32_t, 4> r =
        Philox4x32x10({static_cast<uint32_t>(block),
                       static_cast<uint32_t>(block >> 32), 0, 0},
                      key);
    float z[4];
    BoxMuller(r[0], r[1], &z[0], &z[1]);
    BoxMuller(r[2], r[3], &z[2], &z[3]);
    for (int k = first; k < 4 && i < count; ++k) out[i++] = z[k];
  }
}

std::vector<float> GaussianNoise(uint64_t seed, int64_t count) {
  std::vector<float> out(count > 0 ? count : 0);
  FillGaussianNoise(seed, 0, static_cast<int64_t>(out.size()), out.data());
  return out;
}

}  // namespace lvs::sampler
