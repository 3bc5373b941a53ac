// Fused CPU kernels of the DiT's bfloat16 inference path. Each reproduces
// the rounding steps of the unfused LibTorch ops it replaces (values rounded
// to bf16 wherever the reference's bf16 tensors are), but reads and writes
// its rows once instead of through several float32 temporaries (LibTorch
// 1.13's bf16 LayerNorm and the float32 round trips of RMSNorm were about a
// fifth of a bf16 DiT layer).
//
// Callers check Bf16KernelApplies() first and keep the LibTorch ops
// otherwise (float32, CUDA, autograd).
//
// Thread-safety: pure functions; safe to call concurrently.
#ifndef LVS_MODEL_DIT_BF16_KERNELS_H_
#define LVS_MODEL_DIT_BF16_KERNELS_H_

#include <torch/types.h>

namespace lvs::dit {

// Whether `x` can go through these kernels: a bfloat16 CPU tensor with no
// gradient being recorded.
bool Bf16KernelApplies(const torch::Tensor& x);

// DiT RMSNorm over the last axis of x [..., dim] (bf16, contiguous):
//   n = bf16(x * rsqrt(mean(x^2) + eps)) (float32 inside), then
//   n = bf16(n * weight), optionally n = bf16(n * mul), and optionally
//   n = bf16(residual + n).
// weight [dim]; mul [dim], [1, dim] or x's rows x dim; residual x's shape;
// all bf16. `eps` as the caller rounds it.
torch::Tensor RmsNormBf16(const torch::Tensor& x, const torch::Tensor& weight,
                          double eps, const torch::Tensor& mul = {},
                          const torch::Tensor& residual = {});

// LayerNorm over the last axis (mean and variance in float32, biased
// variance): bf16((x - mean) * rsqrt(var + eps) * weight + bias).
torch::Tensor LayerNormBf16(const torch::Tensor& x, const torch::Tensor& weight,
                            const torch::Tensor& bias, double eps);

// Splits float32 x into bf16 hi = bf16(x) and lo = bf16(x - hi), so that
// hi + lo carries x to about 16 significant bits.
void SplitBf16(const torch::Tensor& x, torch::Tensor* hi, torch::Tensor* lo);

}  // namespace lvs::dit

#endif  // LVS_MODEL_DIT_BF16_KERNELS_H_
