// CogVideoXDecoder3D: conv_in, mid block, up blocks (the first
// log2(temporal ratio) also double time), SpatialNorm3D, SiLU, conv_out.
// Every norm is conditioned on the latent chunk being decoded.
//
// Thread-safety: forward() only reads weights; see causal_conv3d.h.
#ifndef LVS_MODEL_VAE_DECODER3D_H_
#define LVS_MODEL_VAE_DECODER3D_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/vae/causal_cache.h"
#include "model/vae/causal_conv3d.h"
#include "model/vae/mid_block3d.h"
#include "model/vae/spatial_norm3d.h"
#include "model/vae/up_block3d.h"
#include "model/vae/vae_config.h"

namespace lvs::vae {

// Receives intermediate decoder outputs by stage name ("conv_in",
// "mid_block", "up_blocks.0", ...), for tracing.
using StageFn =
    std::function<void(const std::string& stage, const torch::Tensor& value)>;

// Returns the number of frames one decoder call makes of a chunk of
// `latent_frames` latent frames.
int64_t DecodedChunkFrames(const VaeConfig& config, int64_t latent_frames);

// Checkpoint keys under `decoder.`: `conv_in.conv.*`, `mid_block.*`,
// `up_blocks.{i}.*`, `norm_out.{norm_layer,conv_y.conv,conv_b.conv}.*`,
// `conv_out.conv.*`.
class Decoder3DImpl : public torch::nn::Module {
 public:
  explicit Decoder3DImpl(const VaeConfig& config);

  // Returns the frames [B, 3, T', 8h, 8w] of latent chunk z [B, Z, t, h, w].
  torch::Tensor forward(const torch::Tensor& z, CausalCache& cache,
                        const StageFn& on_stage = {});

  CausalConv3d conv_in{nullptr};
  MidBlock3D mid_block{nullptr};
  torch::nn::ModuleList up_blocks;
  SpatialNorm3D norm_out{nullptr};
  CausalConv3d conv_out{nullptr};

 private:
  std::vector<UpBlock3D> up_list_;
};
TORCH_MODULE(Decoder3D);

}  // namespace lvs::vae

#endif  // LVS_MODEL_VAE_DECODER3D_H_
