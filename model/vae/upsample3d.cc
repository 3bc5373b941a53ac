#include "model/vae/upsample3d.h"

#include <vector>

#include "model/vae/spatial_norm3d.h"

namespace lvs::vae {

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
  // Nearest 2x resizes, by repetition (ResizeNearest: bit-identical to
  // F::interpolate, faster in bf16).
  const int64_t frames = x.size(2), h2 = 2 * x.size(3), w2 = 2 * x.size(4);
  torch::Tensor up;
  if (compress_time_ && frames > 1 && frames % 2 == 1) {
    torch::Tensor first = ResizeNearest(x.narrow(2, 0, 1), 1, h2, w2);
    torch::Tensor rest =
        ResizeNearest(x.narrow(2, 1, frames - 1), 2 * (frames - 1), h2, w2);
    // [B, C, 1, 2H, 2W] + [B, C, 2(T-1), 2H, 2W] -> [B, C, 1+2(T-1), 2H, 2W]
    up = torch::cat({first, rest}, 2);
  } else if (compress_time_ && frames > 1) {
    up = ResizeNearest(x, 2 * frames, h2, w2);
  } else {
    up = ResizeNearest(x, frames, h2, w2);
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
