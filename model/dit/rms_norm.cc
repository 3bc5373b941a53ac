#include "model/dit/rms_norm.h"

namespace lvs::dit {

RMSNormImpl::RMSNormImpl(RMSNormOptions options) : options_(options) {
  weight = register_parameter("weight", torch::ones({options_.dim()}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  // eps as a value of the input dtype (1e-5 -> 1.0014e-5 in bfloat16).
  const double eps =
      torch::scalar_tensor(options_.eps(), torch::dtype(x.scalar_type()))
          .item<double>();
  torch::Tensor xf = x.to(torch::kFloat32);
  torch::Tensor inv =
      torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true).add_(eps));
  torch::Tensor out = xf.mul(inv).to(x.scalar_type());
  // Inference: scaled in its own fresh buffer (same values as mul).
  if (!torch::GradMode::is_enabled() &&
      weight.scalar_type() == out.scalar_type()) {
    return out.mul_(weight);
  }
  return out.mul(weight);
}

}  // namespace lvs::dit
