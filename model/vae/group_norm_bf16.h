// GroupNorm of bfloat16 CPU activations in one kernel: statistics in
// float32 per (batch, group), then y = x * (rstd * gamma) + (beta - mean *
// rstd * gamma) in float32, rounded once to bf16, as LibTorch's float32
// kernel computes it. LibTorch 1.13's own bf16 GroupNorm runs about 3x
// slower than its float32 one and was a third of a bf16 VAE decode.
// Optionally fuses SpatialNorm's modulation: round(round(GN(x)) * scale) +
// shift, rounded after each op like the separate tensor ops.
//
// Thread-safety: pure functions over their arguments; parallel inside
// through LibTorch's intra-op threads.
#ifndef LVS_MODEL_VAE_GROUP_NORM_BF16_H_
#define LVS_MODEL_VAE_GROUP_NORM_BF16_H_

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace torch::nn {
class GroupNormImpl;
}  // namespace torch::nn

namespace lvs::vae {

// Whether GroupNormBf16 serves x: a bf16 CPU tensor [N, C, ...] with
// autograd off (training keeps LibTorch's differentiable kernel).
bool GroupNormBf16Applies(const at::Tensor& x);

// GroupNorm of x [N, C, ...] over `groups` groups of C / groups channels,
// with per-channel bf16 `weight` and `bias` [C]. `scale` and `shift`, when
// defined, have x's shape and modulate the result (see above).
at::Tensor GroupNormBf16(const at::Tensor& x, int64_t groups,
                         const at::Tensor& weight, const at::Tensor& bias,
                         double eps, const at::Tensor& scale = {},
                         const at::Tensor& shift = {});

// norm.forward(x), through GroupNormBf16 where it applies and the module's
// weights are bf16.
at::Tensor GroupNormForward(torch::nn::GroupNormImpl& norm,
                            const at::Tensor& x);

}  // namespace lvs::vae

#endif  // LVS_MODEL_VAE_GROUP_NORM_BF16_H_
