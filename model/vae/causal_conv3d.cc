#include "model/vae/causal_conv3d.h"

#include <algorithm>
#include <vector>

namespace lvs::vae {

torch::Tensor SafeConv3d(torch::nn::Conv3dImpl& conv, const torch::Tensor& x,
                         int64_t max_elements) {
  if (x.numel() <= max_elements) return conv.forward(x);
  const int64_t context = conv.options.kernel_size()->at(0) - 1;
  const int64_t out_frames = x.size(2) - context;
  const int64_t frame_elements = x.numel() / x.size(2);
  // Output frames per slice so that slice + context stays under the bound.
  const int64_t per_slice =
      std::max<int64_t>(1, max_elements / frame_elements - context);
  std::vector<torch::Tensor> outs;
  for (int64_t start = 0; start < out_frames; start += per_slice) {
    const int64_t len = std::min(per_slice, out_frames - start);
    outs.push_back(conv.forward(x.narrow(2, start, len + context)));
  }
  return torch::cat(outs, 2);
}

CausalConv3dImpl::CausalConv3dImpl(const CausalConv3dOptions& options)
    : kernel_size_(options.kernel_size) {
  const int64_t pad = options.kernel_size / 2;
  conv = register_module(
      "conv", torch::nn::Conv3d(torch::nn::Conv3dOptions(options.in_channels,
                                                         options.out_channels,
                                                         options.kernel_size)
                                    .padding({0, pad, pad})));
}

torch::Tensor CausalConv3dImpl::forward(const torch::Tensor& x,
                                        CausalCache& cache) {
  if (kernel_size_ == 1) return SafeConv3d(*conv, x);
  const int64_t context = kernel_size_ - 1;
  torch::Tensor previous = cache.Get(this);
  if (!previous.defined()) {
    // [B, C, 1, H, W] -> [B, C, k-1, H, W]
    previous = x.narrow(2, 0, 1).expand(
        {x.size(0), x.size(1), context, x.size(3), x.size(4)});
  }
  // [B, C, k-1, H, W] + [B, C, T, H, W] -> [B, C, k-1+T, H, W]
  torch::Tensor padded = torch::cat({previous, x}, 2);
  cache.Put(this, padded.narrow(2, padded.size(2) - context, context).clone());
  return SafeConv3d(*conv, padded);
}

}  // namespace lvs::vae
