// CogVideoXDownBlock3D: `layers_per_block` GroupNorm resnets, then an
// optional Downsample3D (with or without time compression).
//
// Thread-safety: forward() only reads weights; see causal_conv3d.h.
#ifndef LVS_MODEL_VAE_DOWN_BLOCK3D_H_
#define LVS_MODEL_VAE_DOWN_BLOCK3D_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "model/vae/causal_cache.h"
#include "model/vae/downsample3d.h"
#include "model/vae/resnet_block3d.h"

namespace lvs::vae {

// Shape of one encoder block.
struct DownBlock3DOptions {
  int64_t in_channels;
  int64_t out_channels;
  int64_t num_layers;
  int64_t groups;
  double eps;
  bool add_downsample;
  bool compress_time;
};

// Checkpoint keys: `resnets.{j}.*`, `downsamplers.0.conv.*`.
class DownBlock3DImpl : public torch::nn::Module {
 public:
  explicit DownBlock3DImpl(const DownBlock3DOptions& options);

  // Returns the block's output for x [B, C, T, H, W].
  torch::Tensor forward(const torch::Tensor& x, CausalCache& cache);

  torch::nn::ModuleList resnets;
  torch::nn::ModuleList downsamplers{nullptr};

 private:
  std::vector<ResnetBlock3D> resnet_list_;
  Downsample3D downsampler_{nullptr};
};
TORCH_MODULE(DownBlock3D);

}  // namespace lvs::vae

#endif  // LVS_MODEL_VAE_DOWN_BLOCK3D_H_
