#include "model/vae/encoder3d.h"

#include "model/vae/group_norm_bf16.h"

namespace lvs::vae {

int64_t EncodedFrames(const VaeConfig& config, int64_t frames) {
  for (int64_t i = 0; i < config.TemporalCompressLevel(); ++i) {
    frames = DownsampledFrames(frames, /*compress_time=*/true);
  }
  return frames;
}

Encoder3DImpl::Encoder3DImpl(const VaeConfig& c) {
  const std::vector<int64_t>& widths = c.block_out_channels;
  const int64_t blocks = static_cast<int64_t>(widths.size());
  conv_in = register_module("conv_in", CausalConv3d(CausalConv3dOptions(
                                           c.in_channels, widths[0], 3)));
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < blocks; ++i) {
    down_list_.emplace_back(DownBlock3DOptions{
        i == 0 ? widths[0] : widths[i - 1], widths[i], c.layers_per_block,
        c.norm_num_groups, c.norm_eps, /*add_downsample=*/i < blocks - 1,
        /*compress_time=*/i < c.TemporalCompressLevel()});
    down_blocks->push_back(down_list_.back());
  }
  mid_block = register_module(
      "mid_block", MidBlock3D(MidBlock3DOptions{
                       widths.back(), c.norm_num_groups, c.norm_eps}));
  // eps 1e-6 regardless of norm_eps, as in diffusers.
  norm_out = register_module(
      "norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(
                                           c.norm_num_groups, widths.back())
                                           .eps(1e-6)));
  conv_out = register_module(
      "conv_out", CausalConv3d(CausalConv3dOptions(widths.back(),
                                                   2 * c.latent_channels, 3)));
}

torch::Tensor Encoder3DImpl::forward(const torch::Tensor& x,
                                     CausalCache& cache) {
  torch::Tensor h = conv_in(x, cache);
  for (DownBlock3D& block : down_list_) h = block(h, cache);
  h = mid_block(h, torch::Tensor(), cache);
  h = GroupNormForward(*norm_out, h);
  return conv_out(torch::silu_(h), cache);
}

}  // namespace lvs::vae
