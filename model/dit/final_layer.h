// The DiT's output head for one patch combination:
// linear(LayerNorm_noaffine_eps1e-6(x) * (1 + adaLN_modulation(c))).
//
// Thread-safety: forward is const on the module state; safe to call
// concurrently.
#ifndef LVS_MODEL_DIT_FINAL_LAYER_H_
#define LVS_MODEL_DIT_FINAL_LAYER_H_

#include <torch/torch.h>

#include <cstdint>

namespace lvs::dit {

// Shapes of one final layer.
struct FinalLayerOptions {
  TORCH_ARG(int64_t, dim) = 0;           // Token width.
  TORCH_ARG(int64_t, adaln_dim) = 0;     // Conditioning width.
  TORCH_ARG(int64_t, out_features) = 0;  // pF * P * P * out_channels.
};

// `norm_final` (no parameters), `linear`, `adaLN_modulation.1`.
class FinalLayerImpl : public torch::nn::Module {
 public:
  explicit FinalLayerImpl(const FinalLayerOptions& options);

  // x [L, dim] packed tokens, c [B, adaln_dim] per item, src_ids [L] item of
  // each token -> [L, out_features].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& c,
                        const torch::Tensor& src_ids);

  torch::nn::LayerNorm norm_final{nullptr};
  torch::nn::Linear linear{nullptr};
  torch::nn::Sequential adaLN_modulation{nullptr};
};
TORCH_MODULE(FinalLayer);

}  // namespace lvs::dit

#endif  // LVS_MODEL_DIT_FINAL_LAYER_H_
