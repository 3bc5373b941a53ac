// CogVideoXUpsample3D: nearest 2x up-sampling followed by a 2D 3x3 conv per
// frame. With time compression: odd T > 1 -> the first frame 2x in H, W and
// the rest 2x in T, H, W (1 + 2(T-1) frames); even T -> 2x in T, H, W;
// T = 1 -> H, W only. Without: H, W only.
//
// Thread-safety: forward() only reads weights.
#ifndef LVS_MODEL_VAE_UPSAMPLE3D_H_
#define LVS_MODEL_VAE_UPSAMPLE3D_H_

#include <torch/torch.h>

#include <cstdint>

namespace lvs::vae {

// Shape of one up-sampler.
struct Upsample3DOptions {
  int64_t channels;
  bool compress_time;
};

// Returns the number of frames Upsample3D makes of `frames`.
int64_t UpsampledFrames(int64_t frames, bool compress_time);

// Checkpoint keys: `conv.weight` [C, C, 3, 3], `conv.bias`.
class Upsample3DImpl : public torch::nn::Module {
 public:
  explicit Upsample3DImpl(const Upsample3DOptions& options);

  // Returns x [B, C, T, H, W] up-sampled to [B, C, T', 2H, 2W].
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d conv{nullptr};

 private:
  bool compress_time_;
};
TORCH_MODULE(Upsample3D);

}  // namespace lvs::vae

#endif  // LVS_MODEL_VAE_UPSAMPLE3D_H_
