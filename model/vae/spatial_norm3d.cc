#include "model/vae/spatial_norm3d.h"

#include <vector>

#include "model/vae/group_norm_bf16.h"

namespace lvs::vae {
namespace {

namespace F = torch::nn::functional;

bool PowerOfTwoMultiple(int64_t out, int64_t in) {
  if (in <= 0 || out % in != 0) return false;
  const int64_t k = out / in;
  return (k & (k - 1)) == 0;
}

}  // namespace

// Nearest resize of z [B, Z, t, h, w] to [B, Z, T, H, W]. Where every
// factor is a power of two, nearest picks source index i / k exactly, i.e.
// repeats each value k times: done as a strided copy, which LibTorch 1.13
// runs far faster in bf16 than its nearest kernel (bit-identical).
torch::Tensor ResizeNearest(const torch::Tensor& z, int64_t frames,
                            int64_t height, int64_t width) {
  const int64_t b = z.size(0), c = z.size(1), t = z.size(2), h = z.size(3),
                w = z.size(4);
  if (PowerOfTwoMultiple(frames, t) && PowerOfTwoMultiple(height, h) &&
      PowerOfTwoMultiple(width, w)) {
    const int64_t kt = frames / t, kh = height / h, kw = width / w;
    // [B, Z, t, 1, h, 1, w, 1] -> [B, Z, t, kt, h, kh, w, kw]
    //   -> [B, Z, T, H, W]
    return z.reshape({b, c, t, 1, h, 1, w, 1})
        .expand({b, c, t, kt, h, kh, w, kw})
        .reshape({b, c, frames, height, width});
  }
  return F::interpolate(z,
                        F::InterpolateFuncOptions()
                            .size(std::vector<int64_t>{frames, height, width})
                            .mode(torch::kNearest));
}

SpatialNorm3DImpl::SpatialNorm3DImpl(const SpatialNorm3DOptions& options) {
  norm_layer = register_module(
      "norm_layer", torch::nn::GroupNorm(torch::nn::GroupNormOptions(
                                             options.groups, options.f_channels)
                                             .eps(1e-6)));
  conv_y = register_module(
      "conv_y", CausalConv3d(CausalConv3dOptions(options.zq_channels,
                                                 options.f_channels, 1)));
  conv_b = register_module(
      "conv_b", CausalConv3d(CausalConv3dOptions(options.zq_channels,
                                                 options.f_channels, 1)));
}

torch::Tensor SpatialNorm3DImpl::forward(const torch::Tensor& f,
                                         const torch::Tensor& zq,
                                         CausalCache& cache) {
  const int64_t frames = f.size(2), height = f.size(3), width = f.size(4);
  torch::Tensor z;
  if (frames > 1 && frames % 2 == 1) {
    torch::Tensor first = ResizeNearest(zq.narrow(2, 0, 1), 1, height, width);
    torch::Tensor rest = ResizeNearest(zq.narrow(2, 1, zq.size(2) - 1),
                                       frames - 1, height, width);
    // [B, Z, 1, H, W] + [B, Z, T-1, H, W] -> [B, Z, T, H, W]
    z = torch::cat({first, rest}, 2);
  } else {
    z = ResizeNearest(zq, frames, height, width);
  }
  torch::Tensor scale = conv_y(z, cache);
  torch::Tensor shift = conv_b(z, cache);
  // (GN(f) * scale) + shift, rounded after each op like the reference; in
  // one pass for bf16 on the CPU.
  if (GroupNormBf16Applies(f) &&
      norm_layer->weight.scalar_type() == torch::kBFloat16 &&
      scale.scalar_type() == torch::kBFloat16 &&
      shift.scalar_type() == torch::kBFloat16) {
    return GroupNormBf16(f, norm_layer->options.num_groups(),
                         norm_layer->weight, norm_layer->bias,
                         norm_layer->options.eps(), scale, shift);
  }
  return norm_layer(f).mul_(scale).add_(shift);
}

}  // namespace lvs::vae
