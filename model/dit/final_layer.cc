#include "model/dit/final_layer.h"

namespace lvs::dit {

FinalLayerImpl::FinalLayerImpl(const FinalLayerOptions& options) {
  norm_final = register_module(
      "norm_final",
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.dim()})
                               .elementwise_affine(false)
                               .eps(1e-6)));
  linear = register_module(
      "linear", torch::nn::Linear(options.dim(), options.out_features()));
  adaLN_modulation = register_module(
      "adaLN_modulation",
      torch::nn::Sequential(
          torch::nn::SiLU(),
          torch::nn::Linear(options.adaln_dim(), options.dim())));
}

torch::Tensor FinalLayerImpl::forward(const torch::Tensor& x,
                                      const torch::Tensor& c,
                                      const torch::Tensor& src_ids) {
  torch::Tensor scale =
      adaLN_modulation->forward(c).index_select(0, src_ids);  // [L, dim]
  return linear(norm_final(x) * (1 + scale));
}

}  // namespace lvs::dit
