// CogVideoXMidBlock3D: two resnets at the deepest width (GroupNorm in the
// encoder, SpatialNorm3D in the decoder).
//
// Thread-safety: forward() only reads weights; see causal_conv3d.h.
#ifndef LVS_MODEL_VAE_MID_BLOCK3D_H_
#define LVS_MODEL_VAE_MID_BLOCK3D_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "model/vae/causal_cache.h"
#include "model/vae/resnet_block3d.h"

namespace lvs::vae {

// Shape of the mid block.
struct MidBlock3DOptions {
  int64_t channels;
  int64_t groups;
  double eps;
  // Latent channels for SpatialNorm3D (decoder); 0 for GroupNorm (encoder).
  int64_t spatial_norm_dim = 0;
};

// Checkpoint keys: `resnets.{0,1}.*`.
class MidBlock3DImpl : public torch::nn::Module {
 public:
  explicit MidBlock3DImpl(const MidBlock3DOptions& options);

  // Returns the block's output for x [B, C, T, H, W]; `zq` is the decoder's
  // latent chunk (undefined in the encoder).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& zq,
                        CausalCache& cache);

  torch::nn::ModuleList resnets;

 private:
  std::vector<ResnetBlock3D> resnet_list_;
};
TORCH_MODULE(MidBlock3D);

}  // namespace lvs::vae

#endif  // LVS_MODEL_VAE_MID_BLOCK3D_H_
