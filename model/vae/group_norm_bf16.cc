#include "model/vae/group_norm_bf16.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "model/common/bf16_bits.h"

namespace lvs::vae {
namespace {

using common::Narrow;
using common::ReduceBf16;
using common::Round;
using common::Widen;

LVS_VECTOR_CLONES float Sum(const uint16_t* x, int64_t n) {
  return ReduceBf16(x, n, [](float v) { return v; });
}

LVS_VECTOR_CLONES float SumCentredSquares(const uint16_t* x, float mean,
                                          int64_t n) {
  return ReduceBf16(x, n, [mean](float v) { return (v - mean) * (v - mean); });
}

// One channel: o = x * a + b, or round(round(x * a + b) * sc) + sh.
LVS_VECTOR_CLONES void ApplyChannel(const uint16_t* __restrict x, float a,
                                    float b, const uint16_t* __restrict sc,
                                    const uint16_t* __restrict sh,
                                    uint16_t* __restrict o, int64_t n) {
  if (sc != nullptr) {
    for (int64_t i = 0; i < n; ++i) {
      o[i] = Narrow(Round(Round(Widen(x[i]) * a + b) * Widen(sc[i])) +
                    Widen(sh[i]));
    }
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = Narrow(Widen(x[i]) * a + b);
  }
}

const uint16_t* Bits(const at::Tensor& t) {
  return t.defined()
             ? reinterpret_cast<const uint16_t*>(t.data_ptr<c10::BFloat16>())
             : nullptr;
}

at::Tensor Bf16Contiguous(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.scalar_type() == at::kBFloat16 && t.device().is_cpu(),
              "GroupNormBf16: ", what, " must be a bfloat16 CPU tensor");
  return t.contiguous();
}

}  // namespace

bool GroupNormBf16Applies(const at::Tensor& x) {
  return x.scalar_type() == at::kBFloat16 && x.device().is_cpu() &&
         x.dim() >= 2 && !at::GradMode::is_enabled();
}

at::Tensor GroupNormBf16(const at::Tensor& x_in, int64_t groups,
                         const at::Tensor& weight_in, const at::Tensor& bias_in,
                         double eps, const at::Tensor& scale_in,
                         const at::Tensor& shift_in) {
  const at::Tensor x = Bf16Contiguous(x_in, "x");
  const at::Tensor weight = Bf16Contiguous(weight_in, "weight");
  const at::Tensor bias = Bf16Contiguous(bias_in, "bias");
  const int64_t n = x.size(0), c = x.size(1);
  TORCH_CHECK(groups > 0 && c % groups == 0, "GroupNormBf16: ", c,
              " channels do not split into ", groups, " groups");
  TORCH_CHECK(weight.numel() == c && bias.numel() == c,
              "GroupNormBf16: weight and bias need ", c, " values");
  at::Tensor scale, shift;
  if (scale_in.defined()) {
    scale = Bf16Contiguous(scale_in, "scale");
    shift = Bf16Contiguous(shift_in, "shift");
    TORCH_CHECK(scale.sizes() == x.sizes() && shift.sizes() == x.sizes(),
                "GroupNormBf16: scale and shift must have x's shape");
  }
  at::Tensor out = at::empty_like(x);
  if (x.numel() == 0) return out;
  const int64_t per_channel = x.numel() / (n * c);
  const int64_t channels = c / groups, per_group = channels * per_channel;
  const uint16_t *xp = Bits(x), *wp = Bits(weight), *bp = Bits(bias),
                 *sp = Bits(scale), *hp = Bits(shift);
  auto* op = reinterpret_cast<uint16_t*>(out.data_ptr<c10::BFloat16>());
  const float eps_f = static_cast<float>(eps);
  at::parallel_for(0, n * groups, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t base = row * per_group;
      // float32 partial sums per channel, added up in double.
      double sum = 0, centred = 0;
      for (int64_t k = 0; k < channels; ++k) {
        sum += Sum(xp + base + k * per_channel, per_channel);
      }
      const float mean = static_cast<float>(sum / per_group);
      for (int64_t k = 0; k < channels; ++k) {
        centred +=
            SumCentredSquares(xp + base + k * per_channel, mean, per_channel);
      }
      const float var = static_cast<float>(centred / per_group);
      const float rstd = 1.f / std::sqrt(std::max(var, 0.f) + eps_f);
      for (int64_t k = 0; k < channels; ++k) {
        const int64_t ch = (row % groups) * channels + k;
        const float a = rstd * Widen(wp[ch]);
        const float b = Widen(bp[ch]) - mean * a;
        const int64_t at = base + k * per_channel;
        ApplyChannel(xp + at, a, b, sp ? sp + at : nullptr,
                     hp ? hp + at : nullptr, op + at, per_channel);
      }
    }
  });
  return out;
}

at::Tensor GroupNormForward(torch::nn::GroupNormImpl& norm,
                            const at::Tensor& x) {
  if (!GroupNormBf16Applies(x) || !norm.weight.defined() ||
      norm.weight.scalar_type() != at::kBFloat16) {
    return norm.forward(x);
  }
  return GroupNormBf16(x, norm.options.num_groups(), norm.weight, norm.bias,
                       norm.options.eps());
}

}  // namespace lvs::vae
