// The fused bf16 kernels against the unfused LibTorch ops they replace, and
// the bf16 x bf16 -> float32 product against float32 matmul.
#include "model/dit/bf16_kernels.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/common/bf16_gemm.h"

namespace lvs::dit {
namespace {

constexpr auto kBf16 = torch::kBFloat16;

torch::Tensor RandBf16(std::vector<int64_t> shape, double scale = 1.0) {
  return (torch::randn(shape) * scale).to(kBf16);
}

// Fraction of equal values and the largest difference in units of the
// largest magnitude of `want`.
double EqualFraction(const torch::Tensor& got, const torch::Tensor& want) {
  return torch::eq(got, want).to(torch::kFloat32).mean().item<double>();
}

double MaxRel(const torch::Tensor& got, const torch::Tensor& want) {
  const torch::Tensor g = got.to(torch::kFloat32), w = want.to(torch::kFloat32);
  return ((g - w).abs().max() / w.abs().max()).item<double>();
}

// The unfused RMSNorm of the DiT in bf16 (golden README 6).
torch::Tensor RmsReference(const torch::Tensor& x, const torch::Tensor& w,
                           double eps) {
  torch::Tensor xf = x.to(torch::kFloat32);
  torch::Tensor inv = torch::rsqrt(xf.pow(2).mean(-1, true) + eps);
  return (xf * inv).to(kBf16) * w;
}

TEST(Bf16Kernels, RmsNormMatchesTheUnfusedOps) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(1);
  torch::Tensor x = RandBf16({37, 200}, 3.0), w = RandBf16({200});
  torch::Tensor mul = RandBf16({1, 200}), rows = RandBf16({37, 200});
  torch::Tensor res = RandBf16({37, 200}, 2.0);
  const double eps = 1e-5;
  torch::Tensor plain = RmsReference(x, w, eps);
  // Equal but for the rare float32 rsqrt/sum-order ulp flipping a rounding.
  EXPECT_GT(EqualFraction(RmsNormBf16(x, w, eps), plain), 0.99);
  EXPECT_GT(EqualFraction(RmsNormBf16(x, w, eps, mul), plain * mul), 0.99);
  EXPECT_GT(EqualFraction(RmsNormBf16(x, w, eps, rows), plain * rows), 0.99);
  EXPECT_GT(EqualFraction(RmsNormBf16(x, w, eps, mul, res), res + plain * mul),
            0.99);
  EXPECT_LE(MaxRel(RmsNormBf16(x, w, eps, mul, res), res + plain * mul),
            std::pow(2.0, -7));
}

TEST(Bf16Kernels, RmsNormRejectsMismatchedShapes) {
  torch::NoGradGuard no_grad;
  torch::Tensor x = RandBf16({4, 8}), w = RandBf16({8});
  EXPECT_THROW(RmsNormBf16(x, RandBf16({7}), 1e-5), c10::Error);
  EXPECT_THROW(RmsNormBf16(x, w, 1e-5, RandBf16({2, 8})), c10::Error);
  EXPECT_THROW(RmsNormBf16(x, w, 1e-5, {}, RandBf16({4, 7})), c10::Error);
  EXPECT_THROW(RmsNormBf16(x.to(torch::kFloat32), w, 1e-5), c10::Error);
}

TEST(Bf16Kernels, LayerNormMatchesLibTorchWithinOneRounding) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(2);
  torch::Tensor x = RandBf16({29, 96}, 4.0) + 1.5;
  torch::Tensor w = RandBf16({96}), b = RandBf16({96});
  torch::Tensor want =
      torch::layer_norm(x.to(torch::kFloat32), {96}, w.to(torch::kFloat32),
                        b.to(torch::kFloat32), 1e-5)
          .to(kBf16);
  torch::Tensor got = LayerNormBf16(x, w, b, 1e-5);
  EXPECT_GT(EqualFraction(got, want), 0.97);
  EXPECT_LE(MaxRel(got, want), std::pow(2.0, -7));
}

TEST(Bf16Kernels, SplitCarriesSixteenBits) {
  torch::manual_seed(4);
  torch::Tensor x = torch::randn({1000}) * 100;
  torch::Tensor hi, lo;
  SplitBf16(x, &hi, &lo);
  EXPECT_TRUE(torch::equal(hi, x.to(kBf16)));
  torch::Tensor back = hi.to(torch::kFloat32) + lo.to(torch::kFloat32);
  EXPECT_LE(((back - x).abs() / x.abs()).max().item<double>(),
            std::pow(2.0, -16));
}

TEST(Bf16Gemm, MatchesFloat32ProductOfTheSameValues) {
  if (!common::HaveBf16F32Gemm()) GTEST_SKIP() << "no native bf16 matmul";
  torch::manual_seed(5);
  torch::Tensor a = RandBf16({70, 48}), b = RandBf16({33, 48});
  torch::Tensor want =
      torch::mm(a.to(torch::kFloat32), b.to(torch::kFloat32).t());
  torch::Tensor c = torch::empty({70, 33});
  common::GemmBf16F32(a, b.t(), c, /*accumulate=*/false);
  // Exact products, float32 sums in another order.
  EXPECT_LE(MaxRel(c, want), 1e-5);
  common::GemmBf16F32(a, b.t(), c, /*accumulate=*/true);
  EXPECT_LE(MaxRel(c, 2 * want), 1e-5);
  torch::Tensor bad = torch::empty({70, 34});
  EXPECT_THROW(common::GemmBf16F32(a, b.t(), bad, false), c10::Error);
}

}  // namespace
}  // namespace lvs::dit
