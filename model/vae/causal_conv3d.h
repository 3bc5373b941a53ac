// CogVideoXCausalConv3d: a 3D convolution that is causal in time. Each call
// prepends the previous call's last k_t - 1 input frames (on a pass's first
// call: k_t - 1 copies of frame 0) and zero-pads H and W by k // 2, so the
// output has as many frames as the input and chunked calls equal one call
// over the whole clip.
//
// Thread-safety: forward() only reads the module's weights; concurrent calls
// are safe when each uses its own CausalCache.
#ifndef LVS_MODEL_VAE_CAUSAL_CONV3D_H_
#define LVS_MODEL_VAE_CAUSAL_CONV3D_H_

#include <torch/torch.h>

#include <cstdint>

#include "model/vae/causal_cache.h"

namespace lvs::vae {

// Inputs above this many elements are convolved in time slices (diffusers'
// CogVideoXSafeConv3d: 2 GiB of 16-bit values, what cuDNN accepts).
inline constexpr int64_t kSafeConvMaxElements = int64_t{1} << 30;

// Returns conv(x) for x [B, C, T, H, W], splitting the output frames into as
// few slices as keep each input slice at most `max_elements` (each slice
// reads its k_t - 1 frames of context). Numerically equal to one call.
torch::Tensor SafeConv3d(torch::nn::Conv3dImpl& conv, const torch::Tensor& x,
                         int64_t max_elements = kSafeConvMaxElements);

// Shape of one causal convolution (cubic kernel, stride 1).
struct CausalConv3dOptions {
  CausalConv3dOptions(int64_t in_channels, int64_t out_channels,
                      int64_t kernel_size)
      : in_channels(in_channels),
        out_channels(out_channels),
        kernel_size(kernel_size) {}
  int64_t in_channels;
  int64_t out_channels;
  int64_t kernel_size;
};

// Checkpoint keys: `conv.weight` [O, C, k, k, k], `conv.bias` [O].
class CausalConv3dImpl : public torch::nn::Module {
 public:
  explicit CausalConv3dImpl(const CausalConv3dOptions& options);

  // Returns the convolution of x [B, C, T, H, W] -> [B, O, T, H, W], reading
  // and updating this conv's frames in `cache`.
  torch::Tensor forward(const torch::Tensor& x, CausalCache& cache);

  // The convolution (padding (0, k//2, k//2); time padding comes from the
  // cache).
  torch::nn::Conv3d conv{nullptr};

 private:
  int64_t kernel_size_;
};
TORCH_MODULE(CausalConv3d);

}  // namespace lvs::vae

#endif  // LVS_MODEL_VAE_CAUSAL_CONV3D_H_
