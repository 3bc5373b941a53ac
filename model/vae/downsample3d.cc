#include "model/vae/downsample3d.h"

namespace lvs::vae {
namespace {

// Averages consecutive pairs of frames of x [B, C, 2k, H, W] -> [B, C, k, H,
// W].
torch::Tensor AveragePairs(const torch::Tensor& x) {
  return torch::avg_pool3d(x, /*kernel_size=*/{2, 1, 1}, /*stride=*/{2, 1, 1});
}

}  // namespace

int64_t DownsampledFrames(int64_t frames, bool compress_time) {
  if (!compress_time) return frames;
  return frames % 2 == 1 ? 1 + (frames - 1) / 2 : frames / 2;
}

Downsample3DImpl::Downsample3DImpl(const Downsample3DOptions& options)
    : compress_time_(options.compress_time) {
  conv = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.channels,
                                                         options.channels, 3)
                                    .stride(2)));
}

torch::Tensor Downsample3DImpl::forward(const torch::Tensor& x_in) {
  torch::Tensor x = x_in;
  const int64_t frames = x.size(2);
  if (compress_time_ && frames % 2 == 1) {
    if (frames > 1) {
      // [B, C, 1, H, W] + [B, C, (T-1)/2, H, W] -> [B, C, 1+(T-1)/2, H, W]
      x = torch::cat(
          {x.narrow(2, 0, 1), AveragePairs(x.narrow(2, 1, frames - 1))}, 2);
    }
  } else if (compress_time_) {
    x = AveragePairs(x);
  }
  x = torch::constant_pad_nd(x, {0, 1, 0, 1}, 0);
  const int64_t b = x.size(0), c = x.size(1), t = x.size(2);
  // [B, C, T, H+1, W+1] -> [B, T, C, H+1, W+1] -> [B*T, C, H+1, W+1]
  torch::Tensor frames2d =
      x.permute({0, 2, 1, 3, 4}).reshape({b * t, c, x.size(3), x.size(4)});
  torch::Tensor out = conv(frames2d);
  // [B*T, C, H', W'] -> [B, T, C, H', W'] -> [B, C, T, H', W']
  return out.reshape({b, t, out.size(1), out.size(2), out.size(3)})
      .permute({0, 2, 1, 3, 4})
      .contiguous();
}

}  // namespace lvs::vae
