// Conditioning embedders of the DiT: the timestep/motion embedder
// (sinusoid -> Linear-SiLU-Linear) and the caption pooling that feeds
// `cap_embedder` (LayerNorm, Linear).
//
// Thread-safety: forward is const on the module state; safe to call
// concurrently.
#ifndef LVS_MODEL_DIT_EMBEDDERS_H_
#define LVS_MODEL_DIT_EMBEDDERS_H_

#include <torch/torch.h>

#include <cstdint>

namespace lvs::dit {

// Width of the sinusoidal timestep features.
inline constexpr int64_t kTimestepFreqDim = 256;

// Returns the float32 sinusoid [N, dim] of t [N]:
// [cos(t f), sin(t f)] with f = exp(-ln(10000) * arange(dim/2) / (dim/2)),
// cos first.
torch::Tensor TimestepSinusoid(const torch::Tensor& t, int64_t dim);

// Embeds a scalar per row (flow time or motion score, already scaled):
// `mlp.0` Linear(256, hidden), SiLU, `mlp.2` Linear(hidden, hidden).
class TimestepEmbedderImpl : public torch::nn::Module {
 public:
  explicit TimestepEmbedderImpl(int64_t hidden);

  // t [N] (any dtype) -> [N, hidden] in the weights' dtype. The sinusoid is
  // float32 and cast to the weights' dtype before the MLP.
  torch::Tensor forward(const torch::Tensor& t);

  torch::nn::Sequential mlp{nullptr};
};
TORCH_MODULE(TimestepEmbedder);

// Masked mean of caption features: sum(cap * mask) / sum(mask) over tokens,
// accumulated in float32 (the mask is a float32 tensor in the reference, so
// the product promotes) and rounded to cap's dtype.
// cap [B, L, D], mask [B, L] (nonzero = valid) -> [B, D].
torch::Tensor MaskedMeanPool(const torch::Tensor& cap,
                             const torch::Tensor& mask);

}  // namespace lvs::dit

#endif  // LVS_MODEL_DIT_EMBEDDERS_H_
