// CogVideoXResnetBlock3D (no time embedding):
// `norm1 -> silu -> conv1 -> norm2 -> silu -> conv2`, plus the input, through
// a 1x1x1 `conv_shortcut` when the channel count changes. The encoder's norms
// are GroupNorms; the decoder's are SpatialNorm3D conditioned on the latent.
//
// Thread-safety: forward() only reads weights; see causal_conv3d.h.
#ifndef LVS_MODEL_VAE_RESNET_BLOCK3D_H_
#define LVS_MODEL_VAE_RESNET_BLOCK3D_H_

#include <torch/torch.h>

#include <cstdint>

#include "model/vae/causal_cache.h"
#include "model/vae/causal_conv3d.h"
#include "model/vae/spatial_norm3d.h"

namespace lvs::vae {

// Shape of one resnet block.
struct ResnetBlock3DOptions {
  int64_t in_channels;
  int64_t out_channels;
  int64_t groups;
  double eps;
  // Latent channels of the decoder's SpatialNorm3D; 0 selects GroupNorm.
  int64_t spatial_norm_dim = 0;
};

// Checkpoint keys: `norm1.*`, `conv1.conv.*`, `norm2.*`, `conv2.conv.*` and,
// when in != out, `conv_shortcut.{weight,bias}`.
class ResnetBlock3DImpl : public torch::nn::Module {
 public:
  explicit ResnetBlock3DImpl(const ResnetBlock3DOptions& options);

  // Returns the block's output for x [B, C, T, H, W] -> [B, O, T, H, W].
  // `zq` is the decoder's latent chunk (undefined in the encoder).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& zq,
                        CausalCache& cache);

  // Registered as "norm1"/"norm2": GroupNorm (encoder) or SpatialNorm3D
  // (decoder); exactly one of each pair is set.
  torch::nn::GroupNorm norm1_group{nullptr}, norm2_group{nullptr};
  SpatialNorm3D norm1_spatial{nullptr}, norm2_spatial{nullptr};
  CausalConv3d conv1{nullptr};
  CausalConv3d conv2{nullptr};
  // Set when in_channels != out_channels.
  torch::nn::Conv3d conv_shortcut{nullptr};
};
TORCH_MODULE(ResnetBlock3D);

}  // namespace lvs::vae

#endif  // LVS_MODEL_VAE_RESNET_BLOCK3D_H_
