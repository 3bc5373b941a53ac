// CogVideoXCausalConv3d: chunked calls with a carried cache equal one call
// over the whole clip, against an independent replicate-pad + conv3d
// reference; time-sliced SafeConv3d equals one conv3d.
#include "model/vae/causal_conv3d.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

namespace lvs::vae {
namespace {

// Independent reference: replicate frame 0 k-1 times in front, zero-pad
// H and W, conv3d.
torch::Tensor Reference(CausalConv3dImpl& m, const torch::Tensor& x,
                        int64_t k) {
  torch::Tensor first = x.narrow(2, 0, 1).repeat({1, 1, k - 1, 1, 1});
  torch::Tensor padded = torch::cat({first, x}, 2);
  padded =
      torch::constant_pad_nd(padded, {k / 2, k / 2, k / 2, k / 2, 0, 0}, 0);
  return torch::conv3d(padded, m.conv->weight, m.conv->bias);
}

TEST(CausalConv3dTest, ChunkedCallsWithCacheEqualOneCall) {
  torch::manual_seed(3);
  torch::NoGradGuard no_grad;
  CausalConv3d conv(CausalConv3dOptions(4, 6, 3));
  torch::Tensor x = torch::randn({2, 4, 11, 5, 7});
  CausalCache whole_cache;
  torch::Tensor whole = conv(x, whole_cache);
  EXPECT_TRUE(torch::allclose(whole, Reference(*conv, x, 3), 1e-5, 1e-5));

  CausalCache cache;
  std::vector<torch::Tensor> parts;
  int64_t start = 0;
  for (int64_t len : {3, 2, 1, 4, 1}) {
    parts.push_back(conv(x.narrow(2, start, len), cache));
    start += len;
    ASSERT_EQ(cache.size(), 1u);
    EXPECT_EQ(cache.Get(conv.get()).size(2), 2);
  }
  torch::Tensor chunked = torch::cat(parts, 2);
  EXPECT_EQ(chunked.sizes(), whole.sizes());
  EXPECT_LT((chunked - whole).abs().max().item<float>(), 1e-5);
}

TEST(CausalConv3dTest, FreshCacheRestartsWithReplicatedFirstFrame) {
  torch::manual_seed(4);
  torch::NoGradGuard no_grad;
  CausalConv3d conv(CausalConv3dOptions(3, 3, 3));
  torch::Tensor a = torch::randn({1, 3, 4, 4, 4});
  torch::Tensor b = torch::randn({1, 3, 4, 4, 4});
  CausalCache cache;
  conv(a, cache);
  torch::Tensor carried = conv(b, cache);
  CausalCache fresh;
  torch::Tensor restarted = conv(b, fresh);
  EXPECT_TRUE(torch::allclose(restarted, Reference(*conv, b, 3), 1e-5, 1e-5));
  EXPECT_GT((carried - restarted).abs().max().item<float>(), 1e-3);
}

TEST(CausalConv3dTest, PointwiseConvKeepsNoCache) {
  torch::NoGradGuard no_grad;
  CausalConv3d conv(CausalConv3dOptions(3, 2, 1));
  CausalCache cache;
  torch::Tensor x = torch::randn({1, 3, 3, 2, 2});
  torch::Tensor y = conv(x, cache);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_TRUE(torch::allclose(y, Reference(*conv, x, 1), 1e-5, 1e-5));
}

TEST(SafeConv3dTest, TimeSlicesEqualOneCall) {
  torch::manual_seed(5);
  torch::NoGradGuard no_grad;
  torch::nn::Conv3d conv(torch::nn::Conv3dOptions(2, 3, 3).padding({0, 1, 1}));
  torch::Tensor x = torch::randn({1, 2, 13, 4, 5});
  torch::Tensor whole = conv(x);
  const int64_t frame = x.numel() / x.size(2);
  for (int64_t max_frames : {3, 4, 7, 12}) {
    torch::Tensor sliced = SafeConv3d(*conv, x, max_frames * frame);
    ASSERT_EQ(sliced.sizes(), whole.sizes()) << max_frames;
    EXPECT_LT((sliced - whole).abs().max().item<float>(), 1e-5) << max_frames;
  }
}

}  // namespace
}  // namespace lvs::vae
