// The bf16 GroupNorm kernel against GroupNorm computed in float64 from the
// same bf16 input (within one bf16 rounding, no further than LibTorch's
// own bf16 kernel),
// the fused SpatialNorm modulation against the separate ops, and the
// fallbacks (autograd on, float32).
#include "model/vae/group_norm_bf16.h"

#include <torch/torch.h>

#include "gtest/gtest.h"

namespace lvs::vae {
namespace {

// GroupNorm in float64 of a bf16 x [N, C, ...].
torch::Tensor Reference(const torch::Tensor& x, int64_t groups,
                        const torch::Tensor& w, const torch::Tensor& b,
                        double eps) {
  return torch::group_norm(x.to(torch::kDouble), groups, w.to(torch::kDouble),
                           b.to(torch::kDouble), eps);
}

struct Case {
  torch::Tensor x, w, b;
};

Case MakeCase(std::vector<int64_t> shape, double offset) {
  torch::manual_seed(3);
  const int64_t c = shape[1];
  Case k;
  k.x = (torch::randn(shape) * 2 + offset).to(torch::kBFloat16);
  k.w = torch::randn({c}).to(torch::kBFloat16);
  k.b = torch::randn({c}).to(torch::kBFloat16);
  return k;
}

TEST(GroupNormBf16, MatchesFloat64WithinOneRounding) {
  torch::NoGradGuard no_grad;
  for (double offset : {0.0, 30.0}) {
    const Case k = MakeCase({2, 64, 3, 10, 12}, offset);
    ASSERT_TRUE(GroupNormBf16Applies(k.x));
    const torch::Tensor got = GroupNormBf16(k.x, 8, k.w, k.b, 1e-6);
    const torch::Tensor want = Reference(k.x, 8, k.w, k.b, 1e-6);
    EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
    // One bf16 rounding is at most 2^-8 relative; a little slack for the
    // float32 statistics.
    const torch::Tensor err = (got.to(torch::kDouble) - want).abs();
    const torch::Tensor bound = want.abs() * (1.0 / 256) * 1.01 + 1e-4;
    EXPECT_TRUE((err <= bound).all().item<bool>())
        << "offset " << offset << " max err " << err.max().item<double>();
    // No further from float64 than LibTorch's own bf16 kernel.
    const torch::Tensor libtorch =
        torch::group_norm(k.x, 8, k.w, k.b, 1e-6).to(torch::kDouble);
    EXPECT_LE(err.max().item<double>(),
              (libtorch - want).abs().max().item<double>());
  }
}

TEST(GroupNormBf16, FusedModulationEqualsSeparateOps) {
  torch::NoGradGuard no_grad;
  const Case k = MakeCase({1, 32, 2, 8, 8}, 0.5);
  const torch::Tensor scale = torch::randn_like(k.x);
  const torch::Tensor shift = torch::randn_like(k.x);
  const torch::Tensor fused =
      GroupNormBf16(k.x, 4, k.w, k.b, 1e-6, scale, shift);
  const torch::Tensor separate =
      GroupNormBf16(k.x, 4, k.w, k.b, 1e-6).mul_(scale).add_(shift);
  EXPECT_TRUE(torch::equal(fused, separate));
}

TEST(GroupNormBf16, ForwardFallsBackWithAutogradOrFloat32) {
  torch::nn::GroupNorm norm(torch::nn::GroupNormOptions(4, 16).eps(1e-6));
  const torch::Tensor x = torch::randn({1, 16, 2, 4, 4});
  // float32: LibTorch's kernel, bit for bit.
  EXPECT_TRUE(torch::equal(GroupNormForward(*norm, x), norm(x)));
  norm->to(torch::kBFloat16);
  const torch::Tensor xb = x.to(torch::kBFloat16);
  // Autograd on: LibTorch's differentiable kernel.
  EXPECT_FALSE(GroupNormBf16Applies(xb));
  const torch::Tensor y = GroupNormForward(*norm, xb);
  EXPECT_TRUE(y.requires_grad());
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(
      torch::equal(GroupNormForward(*norm, xb),
                   GroupNormBf16(xb, 4, norm->weight, norm->bias, 1e-6)));
}

TEST(GroupNormBf16, RejectsChannelsThatDoNotSplit) {
  torch::NoGradGuard no_grad;
  const Case k = MakeCase({1, 10, 4}, 0);
  EXPECT_THROW(GroupNormBf16(k.x, 4, k.w, k.b, 1e-6), c10::Error);
}

}  // namespace
}  // namespace lvs::vae
