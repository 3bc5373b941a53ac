#include "model/vae/mid_block3d.h"

namespace lvs::vae {

MidBlock3DImpl::MidBlock3DImpl(const MidBlock3DOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int j = 0; j < 2; ++j) {
    resnet_list_.emplace_back(ResnetBlock3DOptions{
        o.channels, o.channels, o.groups, o.eps, o.spatial_norm_dim});
    resnets->push_back(resnet_list_.back());
  }
}

torch::Tensor MidBlock3DImpl::forward(const torch::Tensor& x,
                                      const torch::Tensor& zq,
                                      CausalCache& cache) {
  torch::Tensor h = x;
  for (ResnetBlock3D& resnet : resnet_list_) h = resnet(h, zq, cache);
  return h;
}

}  // namespace lvs::vae
