#include "model/dit/rms_norm.h"

#include "model/dit/bf16_kernels.h"

namespace lvs::dit {
namespace {

// eps as a value of `dtype` (1e-5 -> 1.0014e-5 in bfloat16).
double EpsIn(double eps, torch::ScalarType dtype) {
  return torch::scalar_tensor(eps, torch::dtype(dtype)).item<double>();
}

}  // namespace

RMSNormImpl::RMSNormImpl(RMSNormOptions options) : options_(options) {
  weight = register_parameter("weight", torch::ones({options_.dim()}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  const double eps = EpsIn(options_.eps(), x.scalar_type());
  if (Bf16KernelApplies(x) && weight.scalar_type() == x.scalar_type()) {
    return RmsNormBf16(x, weight, eps);
  }
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

torch::Tensor RMSNormImpl::ForwardFused(const torch::Tensor& x,
                                        const torch::Tensor& mul,
                                        const torch::Tensor& residual) {
  const auto dtype = x.scalar_type();
  if (Bf16KernelApplies(x) && weight.scalar_type() == dtype &&
      (!mul.defined() ||
       (mul.scalar_type() == dtype && mul.device().is_cpu())) &&
      (!residual.defined() ||
       (residual.scalar_type() == dtype && residual.device().is_cpu()))) {
    return RmsNormBf16(x, weight, EpsIn(options_.eps(), dtype), mul, residual);
  }
  torch::Tensor out = forward(x);
  if (mul.defined()) {
    // In forward's fresh buffer at inference (the same values as out * mul).
    const bool in_place =
        !torch::GradMode::is_enabled() && mul.scalar_type() == dtype;
    out = in_place ? out.mul_(mul) : out * mul;
  }
  return residual.defined() ? residual + out : out;
}

}  // namespace lvs::dit
