// CogVideoXSpatialNorm3D: the decoder's normalisation conditioned on the
// latent, `GroupNorm(f) * conv_y(zq) + conv_b(zq)`, where zq is the decoder's
// input latent chunk resized (nearest) to f's (T, H, W). For odd T > 1 the
// first frame and the rest are resized separately. GroupNorm statistics cover
// the current chunk only.
//
// Thread-safety: forward() only reads weights; see causal_conv3d.h.
#ifndef LVS_MODEL_VAE_SPATIAL_NORM3D_H_
#define LVS_MODEL_VAE_SPATIAL_NORM3D_H_

#include <torch/torch.h>

#include <cstdint>

#include "model/vae/causal_cache.h"
#include "model/vae/causal_conv3d.h"

namespace lvs::vae {

// Shape of one spatial norm.
// Nearest resize of z [B, Z, t, h, w] to [B, Z, T, H, W], as
// F::interpolate(mode nearest); by repetition where the factors are powers
// of two (bit-identical, faster in bf16).
torch::Tensor ResizeNearest(const torch::Tensor& z, int64_t frames,
                            int64_t height, int64_t width);

struct SpatialNorm3DOptions {
  int64_t f_channels;
  int64_t zq_channels;
  int64_t groups;
};

// Checkpoint keys: `norm_layer.{weight,bias}`, `conv_y.conv.*`,
// `conv_b.conv.*`.
class SpatialNorm3DImpl : public torch::nn::Module {
 public:
  explicit SpatialNorm3DImpl(const SpatialNorm3DOptions& options);

  // Returns the normalised f [B, C, T, H, W] conditioned on zq
  // [B, Z, t, h, w].
  torch::Tensor forward(const torch::Tensor& f, const torch::Tensor& zq,
                        CausalCache& cache);

  // GroupNorm(groups, C, eps 1e-6, as diffusers hard-codes it).
  torch::nn::GroupNorm norm_layer{nullptr};
  // 1x1x1 causal convs from the latent to the scale and shift.
  CausalConv3d conv_y{nullptr};
  CausalConv3d conv_b{nullptr};
};
TORCH_MODULE(SpatialNorm3D);

}  // namespace lvs::vae

#endif  // LVS_MODEL_VAE_SPATIAL_NORM3D_H_
