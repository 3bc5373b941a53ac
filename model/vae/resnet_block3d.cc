#include "model/vae/resnet_block3d.h"

#include "model/vae/group_norm_bf16.h"

namespace lvs::vae {

ResnetBlock3DImpl::ResnetBlock3DImpl(const ResnetBlock3DOptions& o) {
  if (o.spatial_norm_dim > 0) {
    norm1_spatial = register_module(
        "norm1", SpatialNorm3D(SpatialNorm3DOptions{
                     o.in_channels, o.spatial_norm_dim, o.groups}));
    norm2_spatial = register_module(
        "norm2", SpatialNorm3D(SpatialNorm3DOptions{
                     o.out_channels, o.spatial_norm_dim, o.groups}));
  } else {
    norm1_group = register_module(
        "norm1",
        torch::nn::GroupNorm(
            torch::nn::GroupNormOptions(o.groups, o.in_channels).eps(o.eps)));
    norm2_group = register_module(
        "norm2",
        torch::nn::GroupNorm(
            torch::nn::GroupNormOptions(o.groups, o.out_channels).eps(o.eps)));
  }
  conv1 = register_module("conv1", CausalConv3d(CausalConv3dOptions(
                                       o.in_channels, o.out_channels, 3)));
  conv2 = register_module("conv2", CausalConv3d(CausalConv3dOptions(
                                       o.out_channels, o.out_channels, 3)));
  if (o.in_channels != o.out_channels) {
    conv_shortcut = register_module("conv_shortcut",
                                    torch::nn::Conv3d(torch::nn::Conv3dOptions(
                                        o.in_channels, o.out_channels, 1)));
  }
}

torch::Tensor ResnetBlock3DImpl::forward(const torch::Tensor& x,
                                         const torch::Tensor& zq,
                                         CausalCache& cache) {
  torch::Tensor h = norm1_spatial ? norm1_spatial(x, zq, cache)
                                  : GroupNormForward(*norm1_group, x);
  h = conv1(torch::silu_(h), cache);
  h = norm2_spatial ? norm2_spatial(h, zq, cache)
                    : GroupNormForward(*norm2_group, h);
  h = conv2(torch::silu_(h), cache);
  if (conv_shortcut) return h.add_(SafeConv3d(*conv_shortcut, x));
  return h.add_(x);
}

}  // namespace lvs::vae
