// bfloat16 <-> float32 on bit patterns, for hand-written CPU loops that the
// compiler vectorises (plain integer shifts and adds, no intrinsics).
// Rounding is to nearest even, as c10::BFloat16's conversion; NaN stays a
// quiet NaN. Torch-free.
//
// Thread-safety: pure functions.
#ifndef LVS_MODEL_COMMON_BF16_BITS_H_
#define LVS_MODEL_COMMON_BF16_BITS_H_

#include <cstdint>
#include <cstring>

namespace lvs::common {

// Function clones for AVX-512, AVX2 and baseline x86-64, chosen at load.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LVS_VECTOR_CLONES \
  __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LVS_VECTOR_CLONES
#endif

inline uint32_t Bf16FloatBits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
}

inline float Bf16BitsFloat(uint32_t u) {
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}

// bf16 bits -> float.
inline float Widen(uint16_t h) {
  return Bf16BitsFloat(static_cast<uint32_t>(h) << 16);
}

// float -> bf16 bits, round to nearest even.
inline uint16_t Narrow(float v) {
  const uint32_t u = Bf16FloatBits(v);
  const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return v != v ? static_cast<uint16_t>(0x7fc0) : static_cast<uint16_t>(r);
}

// Rounds to the nearest bf16 and back, as a bf16 tensor op stores its
// float32 result.
inline float Round(float v) { return Widen(Narrow(v)); }

// Sum of f(x[i]) over bf16 x with 16 running partial sums (a vectorisable
// order).
template <typename F>
inline float ReduceBf16(const uint16_t* __restrict x, int64_t n, F f) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) acc[j] += f(Widen(x[i + j]));
  }
  float s = 0.f;
  for (int j = 0; j < 16; ++j) s += acc[j];
  for (; i < n; ++i) s += f(Widen(x[i]));
  return s;
}

}  // namespace lvs::common

#endif  // LVS_MODEL_COMMON_BF16_BITS_H_
