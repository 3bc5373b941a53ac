#include "model/vae/spatial_norm3d.h"

#include <vector>

#include "model/vae/group_norm_bf16.h"

namespace lvs::vae {
namespace {

namespace F = torch::nn::functional;

// Nearest resize of z [B, Z, t, h, w] to [B, Z, T, H, W].
torch::Tensor ResizeNearest(const torch::Tensor& z, int64_t frames,
                            int64_t height, int64_t width) {
  return F::interpolate(z,
                        F::InterpolateFuncOptions()
                            .size(std::vector<int64_t>{frames, height, width})
                            .mode(torch::kNearest));
}

}  // namespace

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
