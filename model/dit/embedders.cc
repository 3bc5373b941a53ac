#include "model/dit/embedders.h"

#include <cmath>

namespace lvs::dit {

torch::Tensor TimestepSinusoid(const torch::Tensor& t, int64_t dim) {
  const int64_t half = dim / 2;
  const auto f32 =
      torch::TensorOptions().dtype(torch::kFloat32).device(t.device());
  torch::Tensor freqs =
      torch::exp(-std::log(10000.0) * torch::arange(0, half, f32) / half);
  torch::Tensor args =
      t.to(torch::kFloat32).unsqueeze(1) * freqs.unsqueeze(0);  // [N, half]
  return torch::cat({torch::cos(args), torch::sin(args)}, -1);  // [N, dim]
}

TimestepEmbedderImpl::TimestepEmbedderImpl(int64_t hidden) {
  mlp = register_module(
      "mlp", torch::nn::Sequential(torch::nn::Linear(kTimestepFreqDim, hidden),
                                   torch::nn::SiLU(),
                                   torch::nn::Linear(hidden, hidden)));
}

torch::Tensor TimestepEmbedderImpl::forward(const torch::Tensor& t) {
  const auto dtype = mlp->parameters().front().scalar_type();
  return mlp->forward(TimestepSinusoid(t, kTimestepFreqDim).to(dtype));
}

torch::Tensor MaskedMeanPool(const torch::Tensor& cap,
                             const torch::Tensor& mask) {
  torch::Tensor m = mask.to(torch::kFloat32).unsqueeze(-1);  // [B, L, 1]
  return ((cap * m).sum(1) / m.sum(1)).to(cap.scalar_type());
}

}  // namespace lvs::dit
