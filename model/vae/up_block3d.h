// CogVideoXUpBlock3D: `layers_per_block + 1` SpatialNorm resnets, then an
// optional Upsample3D (with or without time compression).
//
// Thread-safety: forward() only reads weights; see causal_conv3d.h.
#ifndef LVS_MODEL_VAE_UP_BLOCK3D_H_
#define LVS_MODEL_VAE_UP_BLOCK3D_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "model/vae/causal_cache.h"
#include "model/vae/resnet_block3d.h"
#include "model/vae/upsample3d.h"

namespace lvs::vae {

// Shape of one decoder block.
struct UpBlock3DOptions {
  int64_t in_channels;
  int64_t out_channels;
  int64_t num_layers;
  int64_t groups;
  double eps;
  int64_t spatial_norm_dim;
  bool add_upsample;
  bool compress_time;
};

// Checkpoint keys: `resnets.{j}.*`, `upsamplers.0.conv.*`.
class UpBlock3DImpl : public torch::nn::Module {
 public:
  explicit UpBlock3DImpl(const UpBlock3DOptions& options);

  // Returns the block's output for x [B, C, T, H, W] conditioned on the
  // latent chunk zq.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& zq,
                        CausalCache& cache);

  torch::nn::ModuleList resnets;
  torch::nn::ModuleList upsamplers{nullptr};

 private:
  std::vector<ResnetBlock3D> resnet_list_;
  Upsample3D upsampler_{nullptr};
};
TORCH_MODULE(UpBlock3D);

}  // namespace lvs::vae

#endif  // LVS_MODEL_VAE_UP_BLOCK3D_H_
