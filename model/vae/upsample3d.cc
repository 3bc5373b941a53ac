#include "model/vae/upsample3d.h"

#include <vector>

namespace lvs::vae {
namespace {

namespace F = torch::nn::functional;

// Nearest 2x along the last `dims` axes of x.
torch::Tensor Nearest2x(const torch::Tensor& x, int dims) {
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .scale_factor(std::vector<double>(dims, 2.0))
                               .mode(torch::kNearest));
}

// Nearest 2x in H and W of every frame of x [B, C, T, H, W].
torch::Tensor Nearest2xSpatial(const torch::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(1), t = x.size(2);
  // [B, C, T, H, W] -> [B, T, C, H, W] -> [B*T, C, H, W]
  torch::Tensor frames =
      x.permute({0, 2, 1, 3, 4}).reshape({b * t, c, x.size(3), x.size(4)});
  torch::Tensor up = Nearest2x(frames, 2);
  // [B*T, C, 2H, 2W] -> [B, T, C, 2H, 2W] -> [B, C, T, 2H, 2W]
  return up.reshape({b, t, c, up.size(2), up.size(3)}).permute({0, 2, 1, 3, 4});
}

}  // namespace

int64_t UpsampledFrames(int64_t frames, bool compress_time) {
  if (!compress_time || frames == 1) return frames;
  return frames % 2 == 1 ? 1 + 2 * (frames - 1) : 2 * frames;
}

Upsample3DImpl::Upsample3DImpl(const Upsample3DOptions& options)
    : compress_time_(options.compress_time) {
  conv = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.channels,
                                                         options.channels, 3)
                                    .padding(1)));
}

torch::Tensor Upsample3DImpl::forward(const torch::Tensor& x) {
  const int64_t frames = x.size(2);
  torch::Tensor up;
  if (compress_time_ && frames > 1 && frames % 2 == 1) {
    torch::Tensor first = Nearest2xSpatial(x.narrow(2, 0, 1));
    torch::Tensor rest = Nearest2x(x.narrow(2, 1, frames - 1), 3);
    // [B, C, 1, 2H, 2W] + [B, C, 2(T-1), 2H, 2W] -> [B, C, 1+2(T-1), 2H, 2W]
    up = torch::cat({first, rest}, 2);
  } else if (compress_time_ && frames > 1) {
    up = Nearest2x(x, 3);
  } else {
    up = Nearest2xSpatial(x);
  }
  const int64_t b = up.size(0), c = up.size(1), t = up.size(2);
  // [B, C, T', H', W'] -> [B, T', C, H', W'] -> [B*T', C, H', W']
  torch::Tensor frames2d =
      up.permute({0, 2, 1, 3, 4}).reshape({b * t, c, up.size(3), up.size(4)});
  up = torch::Tensor();
  torch::Tensor out = conv(frames2d);
  // [B*T', C, H', W'] -> [B, T', C, H', W'] -> [B, C, T', H', W']
  return out.reshape({b, t, out.size(1), out.size(2), out.size(3)})
      .permute({0, 2, 1, 3, 4})
      .contiguous();
}

}  // namespace lvs::vae
