#include "model/vae/decoder3d.h"

#include "absl/strings/str_cat.h"

namespace lvs::vae {

int64_t DecodedChunkFrames(const VaeConfig& config, int64_t latent_frames) {
  for (int64_t i = 0; i < config.TemporalCompressLevel(); ++i) {
    latent_frames = UpsampledFrames(latent_frames, /*compress_time=*/true);
  }
  return latent_frames;
}

Decoder3DImpl::Decoder3DImpl(const VaeConfig& c) {
  const std::vector<int64_t> widths(c.block_out_channels.rbegin(),
                                    c.block_out_channels.rend());
  const int64_t blocks = static_cast<int64_t>(widths.size());
  const int64_t zq = c.latent_channels;
  conv_in = register_module("conv_in", CausalConv3d(CausalConv3dOptions(
                                           c.latent_channels, widths[0], 3)));
  mid_block = register_module(
      "mid_block", MidBlock3D(MidBlock3DOptions{widths[0], c.norm_num_groups,
                                                c.norm_eps, zq}));
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < blocks; ++i) {
    up_list_.emplace_back(UpBlock3DOptions{
        i == 0 ? widths[0] : widths[i - 1], widths[i], c.layers_per_block + 1,
        c.norm_num_groups, c.norm_eps, zq, /*add_upsample=*/i < blocks - 1,
        /*compress_time=*/i < c.TemporalCompressLevel()});
    up_blocks->push_back(up_list_.back());
  }
  norm_out =
      register_module("norm_out", SpatialNorm3D(SpatialNorm3DOptions{
                                      widths.back(), zq, c.norm_num_groups}));
  conv_out = register_module(
      "conv_out",
      CausalConv3d(CausalConv3dOptions(widths.back(), c.out_channels, 3)));
}

torch::Tensor Decoder3DImpl::forward(const torch::Tensor& z, CausalCache& cache,
                                     const StageFn& on_stage) {
  torch::Tensor h = conv_in(z, cache);
  if (on_stage) on_stage("conv_in", h);
  h = mid_block(h, z, cache);
  if (on_stage) on_stage("mid_block", h);
  for (size_t i = 0; i < up_list_.size(); ++i) {
    h = up_list_[i](h, z, cache);
    if (on_stage) on_stage(absl::StrCat("up_blocks.", i), h);
  }
  h = norm_out(h, z, cache);
  return conv_out(torch::silu_(h), cache);
}

}  // namespace lvs::vae
