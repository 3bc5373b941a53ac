// CogVideoXEncoder3D: conv_in, down blocks (the first log2(temporal ratio)
// also halve time), mid block, GroupNorm, SiLU, conv_out to 2 x latent
// channels (mean and log-variance).
//
// Thread-safety: forward() only reads weights; see causal_conv3d.h.
#ifndef LVS_MODEL_VAE_ENCODER3D_H_
#define LVS_MODEL_VAE_ENCODER3D_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "model/vae/causal_cache.h"
#include "model/vae/causal_conv3d.h"
#include "model/vae/down_block3d.h"
#include "model/vae/mid_block3d.h"
#include "model/vae/vae_config.h"

namespace lvs::vae {

// Returns the number of latent frames the encoder makes of `frames` frames
// in one pass (each time-compressing block: odd T -> 1 + (T-1)/2, even
// T -> T/2).
int64_t EncodedFrames(const VaeConfig& config, int64_t frames);

// Checkpoint keys under `encoder.`: `conv_in.conv.*`, `down_blocks.{i}.*`,
// `mid_block.*`, `norm_out.*`, `conv_out.conv.*`.
class Encoder3DImpl : public torch::nn::Module {
 public:
  explicit Encoder3DImpl(const VaeConfig& config);

  // Returns the moments [B, 2Z, T', H/s, W/s] of video [B, 3, T, H, W].
  torch::Tensor forward(const torch::Tensor& x, CausalCache& cache);

  CausalConv3d conv_in{nullptr};
  torch::nn::ModuleList down_blocks;
  MidBlock3D mid_block{nullptr};
  torch::nn::GroupNorm norm_out{nullptr};
  CausalConv3d conv_out{nullptr};

 private:
  std::vector<DownBlock3D> down_list_;
};
TORCH_MODULE(Encoder3D);

}  // namespace lvs::vae

#endif  // LVS_MODEL_VAE_ENCODER3D_H_
