#include "model/dit/bf16_kernels.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <cstring>

namespace lvs::dit {
namespace {

using Bf16 = c10::BFloat16;

// The hot loops are plain loops over bit patterns that the compiler
// vectorises; with AVX-512 where the CPU has it (function clones chosen at
// load time), baseline x86-64 otherwise.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LVS_VECTOR_CLONES \
  __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LVS_VECTOR_CLONES
#endif

inline uint32_t Bits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
}

inline float FromBits(uint32_t u) {
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}

inline float Widen(uint16_t h) {
  return FromBits(static_cast<uint32_t>(h) << 16);
}

// float -> bf16 bits, round to nearest even; NaN stays a quiet NaN (as
// c10::BFloat16's conversion).
inline uint16_t Narrow(float v) {
  const uint32_t u = Bits(v);
  const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return v != v ? static_cast<uint16_t>(0x7fc0) : static_cast<uint16_t>(r);
}

// Rounds to the nearest bf16 and back, as a bf16 tensor op would store its
// float32 result.
inline float Round(float v) { return Widen(Narrow(v)); }

// Sum of f(x[i]) with 16 running partial sums (a vectorisable order).
template <typename F>
inline float Reduce(const uint16_t* __restrict x, int64_t n, F f) {
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

LVS_VECTOR_CLONES float SumSquares(const uint16_t* x, int64_t n) {
  return Reduce(x, n, [](float v) { return v * v; });
}

LVS_VECTOR_CLONES float Sum(const uint16_t* x, int64_t n) {
  return Reduce(x, n, [](float v) { return v; });
}

LVS_VECTOR_CLONES float SumCentredSquares(const uint16_t* x, float mean,
                                          int64_t n) {
  return Reduce(x, n, [mean](float v) { return (v - mean) * (v - mean); });
}

// One RMSNorm row (see RmsNormBf16); m and r may be null.
LVS_VECTOR_CLONES void RmsRow(const uint16_t* __restrict x,
                              const uint16_t* __restrict w,
                              const uint16_t* __restrict m,
                              const uint16_t* __restrict r, float inv,
                              uint16_t* __restrict o, int64_t n) {
  if (m && r) {
    for (int64_t i = 0; i < n; ++i) {
      const float v = Round(Round(Widen(x[i]) * inv) * Widen(w[i]));
      o[i] = Narrow(Widen(r[i]) + Round(v * Widen(m[i])));
    }
  } else if (m) {
    for (int64_t i = 0; i < n; ++i) {
      const float v = Round(Round(Widen(x[i]) * inv) * Widen(w[i]));
      o[i] = Narrow(v * Widen(m[i]));
    }
  } else if (r) {
    for (int64_t i = 0; i < n; ++i) {
      const float v = Round(Round(Widen(x[i]) * inv) * Widen(w[i]));
      o[i] = Narrow(Widen(r[i]) + v);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      o[i] = Narrow(Round(Widen(x[i]) * inv) * Widen(w[i]));
    }
  }
}

LVS_VECTOR_CLONES void LayerNormRow(const uint16_t* __restrict x,
                                    const uint16_t* __restrict w,
                                    const uint16_t* __restrict b, float mean,
                                    float rstd, uint16_t* __restrict o,
                                    int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    o[i] = Narrow((Widen(x[i]) - mean) * rstd * Widen(w[i]) + Widen(b[i]));
  }
}

LVS_VECTOR_CLONES void SplitRange(const float* __restrict x,
                                  uint16_t* __restrict hi,
                                  uint16_t* __restrict lo, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = Narrow(x[i]);
    hi[i] = h;
    lo[i] = Narrow(x[i] - Widen(h));
  }
}

const uint16_t* U16(const torch::Tensor& t) {
  return t.defined() ? reinterpret_cast<const uint16_t*>(t.data_ptr<Bf16>())
                     : nullptr;
}

uint16_t* MutU16(torch::Tensor& t) {
  return reinterpret_cast<uint16_t*>(t.data_ptr<Bf16>());
}

// Rows of x [..., dim]: total elements / dim.
int64_t Rows(const torch::Tensor& x) {
  return x.numel() == 0 ? 0 : x.numel() / x.size(-1);
}

void CheckBf16(const torch::Tensor& t, const char* what) {
  TORCH_CHECK(t.scalar_type() == torch::kBFloat16 && t.device().is_cpu() &&
                  t.is_contiguous(),
              what, " must be a contiguous bfloat16 CPU tensor");
}

// Rows processed per parallel task: about 64 KiB of bf16 per task.
int64_t Grain(int64_t dim) { return std::max<int64_t>(1, 32768 / dim); }

}  // namespace

bool Bf16KernelApplies(const torch::Tensor& x) {
  return x.scalar_type() == torch::kBFloat16 && x.device().is_cpu() &&
         !torch::GradMode::is_enabled() && x.dim() >= 1 && x.size(-1) > 0;
}

torch::Tensor RmsNormBf16(const torch::Tensor& x_in,
                          const torch::Tensor& weight_in, double eps,
                          const torch::Tensor& mul_in,
                          const torch::Tensor& residual_in) {
  const torch::Tensor x = x_in.contiguous();
  const torch::Tensor weight = weight_in.contiguous();
  CheckBf16(x, "RmsNormBf16: x");
  CheckBf16(weight, "RmsNormBf16: weight");
  const int64_t dim = x.size(-1), rows = Rows(x);
  TORCH_CHECK(weight.numel() == dim, "RmsNormBf16: weight has ", weight.numel(),
              " values for rows of ", dim);
  torch::Tensor mul, residual;
  int64_t mul_rows = 0;
  if (mul_in.defined()) {
    mul = mul_in.contiguous();
    CheckBf16(mul, "RmsNormBf16: mul");
    TORCH_CHECK(mul.size(-1) == dim && (Rows(mul) == 1 || Rows(mul) == rows),
                "RmsNormBf16: mul must have 1 or ", rows, " rows of ", dim);
    mul_rows = Rows(mul);
  }
  if (residual_in.defined()) {
    residual = residual_in.contiguous();
    CheckBf16(residual, "RmsNormBf16: residual");
    TORCH_CHECK(residual.sizes() == x.sizes(),
                "RmsNormBf16: residual shape differs from x");
  }
  torch::Tensor out = torch::empty_like(x);
  const uint16_t *xp = U16(x), *wp = U16(weight), *mp = U16(mul),
                 *rp = U16(residual);
  uint16_t* op = MutU16(out);
  const float eps_f = static_cast<float>(eps);
  at::parallel_for(0, rows, Grain(dim), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float ss = SumSquares(xp + r * dim, dim);
      const float inv = 1.f / std::sqrt(ss / static_cast<float>(dim) + eps_f);
      RmsRow(xp + r * dim, wp,
             mp ? mp + (mul_rows == 1 ? 0 : r * dim) : nullptr,
             rp ? rp + r * dim : nullptr, inv, op + r * dim, dim);
    }
  });
  return out;
}

torch::Tensor LayerNormBf16(const torch::Tensor& x_in,
                            const torch::Tensor& weight_in,
                            const torch::Tensor& bias_in, double eps) {
  const torch::Tensor x = x_in.contiguous();
  const torch::Tensor weight = weight_in.contiguous();
  const torch::Tensor bias = bias_in.contiguous();
  CheckBf16(x, "LayerNormBf16: x");
  CheckBf16(weight, "LayerNormBf16: weight");
  CheckBf16(bias, "LayerNormBf16: bias");
  const int64_t dim = x.size(-1), rows = Rows(x);
  TORCH_CHECK(weight.numel() == dim && bias.numel() == dim,
              "LayerNormBf16: weight and bias need ", dim, " values");
  torch::Tensor out = torch::empty_like(x);
  const uint16_t *xp = U16(x), *wp = U16(weight), *bp = U16(bias);
  uint16_t* op = MutU16(out);
  const float eps_f = static_cast<float>(eps);
  at::parallel_for(0, rows, Grain(dim), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float mean = Sum(xp + r * dim, dim) / static_cast<float>(dim);
      const float var =
          SumCentredSquares(xp + r * dim, mean, dim) / static_cast<float>(dim);
      const float rstd = 1.f / std::sqrt(var + eps_f);
      LayerNormRow(xp + r * dim, wp, bp, mean, rstd, op + r * dim, dim);
    }
  });
  return out;
}

void SplitBf16(const torch::Tensor& x_in, torch::Tensor* hi,
               torch::Tensor* lo) {
  const torch::Tensor x = x_in.contiguous();
  TORCH_CHECK(x.scalar_type() == torch::kFloat32 && x.device().is_cpu(),
              "SplitBf16: x must be a float32 CPU tensor");
  *hi = torch::empty(x.sizes(), x.options().dtype(torch::kBFloat16));
  *lo = torch::empty(x.sizes(), x.options().dtype(torch::kBFloat16));
  const float* xp = x.data_ptr<float>();
  uint16_t* hp = MutU16(*hi);
  uint16_t* lp = MutU16(*lo);
  at::parallel_for(0, x.numel(), 32768, [&](int64_t begin, int64_t end) {
    SplitRange(xp + begin, hp + begin, lp + begin, end - begin);
  });
}

}  // namespace lvs::dit
