// RMSNorm of the DiT blocks (torch.nn.RMSNorm semantics, plain `y * w`).
//
// float32: x * rsqrt(mean(x^2) + eps) * w. Reduced precision (bfloat16):
// normalise in float32 with eps rounded to the input dtype, round the
// normalised value to the input dtype, then multiply by the weight in that
// dtype (golden README section 6).
//
// Thread-safety: forward is const on the module state; safe to call
// concurrently.
#ifndef LVS_MODEL_DIT_RMS_NORM_H_
#define LVS_MODEL_DIT_RMS_NORM_H_

#include <torch/torch.h>

#include <cstdint>

namespace lvs::dit {

// Hyper-parameters of one RMSNorm.
struct RMSNormOptions {
  RMSNormOptions(int64_t dim) : dim_(dim) {}  // NOLINT: implicit like torch's.
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(double, eps) = 1e-5;
};

// Root-mean-square normalisation over the last axis with a learned scale
// `weight` [dim].
class RMSNormImpl : public torch::nn::Module {
 public:
  explicit RMSNormImpl(RMSNormOptions options);

  // Normalises x [..., dim]; returns x's shape and dtype.
  torch::Tensor forward(const torch::Tensor& x);

  // residual + forward(x) * mul, with `mul` (broadcast to x) and `residual`
  // (x's shape) each optional and each op rounded to the dtype as the
  // separate ops would be. One fused pass on the bf16 CPU inference path.
  torch::Tensor ForwardFused(const torch::Tensor& x, const torch::Tensor& mul,
                             const torch::Tensor& residual = {});

  torch::Tensor weight;

 private:
  RMSNormOptions options_;
};
TORCH_MODULE(RMSNorm);

}  // namespace lvs::dit

#endif  // LVS_MODEL_DIT_RMS_NORM_H_
