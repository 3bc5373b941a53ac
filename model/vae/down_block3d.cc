#include "model/vae/down_block3d.h"

namespace lvs::vae {

DownBlock3DImpl::DownBlock3DImpl(const DownBlock3DOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t j = 0; j < o.num_layers; ++j) {
    resnet_list_.emplace_back(
        ResnetBlock3DOptions{j == 0 ? o.in_channels : o.out_channels,
                             o.out_channels, o.groups, o.eps});
    resnets->push_back(resnet_list_.back());
  }
  if (o.add_downsample) {
    downsampler_ =
        Downsample3D(Downsample3DOptions{o.out_channels, o.compress_time});
    downsamplers = register_module("downsamplers", torch::nn::ModuleList());
    downsamplers->push_back(downsampler_);
  }
}

torch::Tensor DownBlock3DImpl::forward(const torch::Tensor& x,
                                       CausalCache& cache) {
  torch::Tensor h = x;
  for (ResnetBlock3D& resnet : resnet_list_)
    h = resnet(h, torch::Tensor(), cache);
  if (downsampler_) h = downsampler_(h);
  return h;
}

}  // namespace lvs::vae
