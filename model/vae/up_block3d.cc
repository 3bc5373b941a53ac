#include "model/vae/up_block3d.h"

namespace lvs::vae {

UpBlock3DImpl::UpBlock3DImpl(const UpBlock3DOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t j = 0; j < o.num_layers; ++j) {
    resnet_list_.emplace_back(ResnetBlock3DOptions{
        j == 0 ? o.in_channels : o.out_channels, o.out_channels, o.groups,
        o.eps, o.spatial_norm_dim});
    resnets->push_back(resnet_list_.back());
  }
  if (o.add_upsample) {
    upsampler_ = Upsample3D(Upsample3DOptions{o.out_channels, o.compress_time});
    upsamplers = register_module("upsamplers", torch::nn::ModuleList());
    upsamplers->push_back(upsampler_);
  }
}

torch::Tensor UpBlock3DImpl::forward(const torch::Tensor& x,
                                     const torch::Tensor& zq,
                                     CausalCache& cache) {
  torch::Tensor h = x;
  for (ResnetBlock3D& resnet : resnet_list_) h = resnet(h, zq, cache);
  if (upsampler_) h = upsampler_(h);
  return h;
}

}  // namespace lvs::vae
