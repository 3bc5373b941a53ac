// CogVideoXDownsample3D: optional temporal average pooling (odd T keeps
// frame 0 and averages pairs of the rest; even T averages pairs), then
// zero-padding (0, 1, 0, 1) and a 2D 3x3 stride-2 conv per frame.
//
// Thread-safety: forward() only reads weights.
#ifndef LVS_MODEL_VAE_DOWNSAMPLE3D_H_
#define LVS_MODEL_VAE_DOWNSAMPLE3D_H_

#include <torch/torch.h>

#include <cstdint>

namespace lvs::vae {

// Shape of one down-sampler.
struct Downsample3DOptions {
  int64_t channels;
  bool compress_time;
};

// Returns the number of frames Downsample3D makes of `frames`.
int64_t DownsampledFrames(int64_t frames, bool compress_time);

// Checkpoint keys: `conv.weight` [C, C, 3, 3], `conv.bias`.
class Downsample3DImpl : public torch::nn::Module {
 public:
  explicit Downsample3DImpl(const Downsample3DOptions& options);

  // Returns x [B, C, T, H, W] down-sampled to [B, C, T', H/2, W/2].
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d conv{nullptr};

 private:
  bool compress_time_;
};
TORCH_MODULE(Downsample3D);

}  // namespace lvs::vae

#endif  // LVS_MODEL_VAE_DOWNSAMPLE3D_H_
