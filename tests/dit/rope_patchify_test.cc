// 3D RoPE table and rotation, and the patch layout, against direct formulas.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <complex>

#include "model/dit/patchify.h"
#include "model/dit/rope.h"

namespace lvs::dit {
namespace {

TEST(Rope, TableMatchesDirectFormula) {
  const std::array<int64_t, 3> dims = {8, 12, 12};
  const double theta = 256.0;
  const std::vector<TokenGrid> grids = {{1, 4, 4}, {2, 3, 5}};
  RopeTable rope = ComputeRope(grids, dims, {64, 128, 128}, theta, torch::kCPU);
  ASSERT_EQ(rope.cos.sizes(), (std::vector<int64_t>{16 + 30, 16}));
  auto cos_a = rope.cos.accessor<float, 2>();
  auto sin_a = rope.sin.accessor<float, 2>();
  int64_t token = 0;
  for (const TokenGrid& g : grids) {
    for (int64_t f = 0; f < g[0]; ++f) {
      for (int64_t h = 0; h < g[1]; ++h) {
        for (int64_t w = 0; w < g[2]; ++w, ++token) {
          const int64_t pos[3] = {f, h, w};
          int64_t col = 0;
          for (int a = 0; a < 3; ++a) {
            for (int64_t k = 0; k < dims[a] / 2; ++k, ++col) {
              const double omega = 1.0 / std::pow(theta, 2.0 * k / dims[a]);
              const float angle = static_cast<float>(pos[a] * omega);
              EXPECT_NEAR(cos_a[token][col], std::cos(angle), 2e-7)
                  << token << "," << col;
              EXPECT_NEAR(sin_a[token][col], std::sin(angle), 2e-7)
                  << token << "," << col;
            }
          }
        }
      }
    }
  }
}

TEST(Rope, ApplyIsInterleavedComplexRotation) {
  torch::manual_seed(1);
  RopeTable rope =
      ComputeRope({{2, 2, 3}}, {4, 6, 6}, {64, 128, 128}, 10000.0, torch::kCPU);
  const int64_t l = 12, h = 3, d = 16;
  torch::Tensor x = torch::randn({l, h, d});
  torch::Tensor y = ApplyRope(x, rope);
  auto xa = x.accessor<float, 3>();
  auto ya = y.accessor<float, 3>();
  for (int64_t i = 0; i < l; ++i) {
    for (int64_t j = 0; j < h; ++j) {
      for (int64_t k = 0; k < d / 2; ++k) {
        std::complex<double> z(xa[i][j][2 * k], xa[i][j][2 * k + 1]);
        std::complex<double> r(rope.cos[i][k].item<double>(),
                               rope.sin[i][k].item<double>());
        std::complex<double> want = z * r;
        EXPECT_NEAR(ya[i][j][2 * k], want.real(), 1e-5);
        EXPECT_NEAR(ya[i][j][2 * k + 1], want.imag(), 1e-5);
      }
    }
  }
  EXPECT_EQ(ApplyRope(x.to(torch::kBFloat16), rope).scalar_type(),
            torch::kBFloat16);
}

TEST(Rope, RejectsGridBeyondLimit) {
  EXPECT_THROW(
      ComputeRope({{65, 1, 1}}, {8, 12, 12}, {64, 128, 128}, 1e4, torch::kCPU),
      c10::Error);
}

TEST(Patchify, TokenLayoutIsFHWWithChannelsFastest) {
  const int64_t c = 3, f = 4, h = 6, w = 4, p = 2, pf = 2;
  torch::Tensor x =
      torch::arange(c * f * h * w, torch::kFloat32).reshape({c, f, h, w});
  PackedLayout layout;
  torch::Tensor tok = Patchify({x}, PatchComb{pf, p}, &layout);
  ASSERT_EQ(tok.sizes(), (std::vector<int64_t>{2 * 3 * 2, pf * p * p * c}));
  auto xa = x.accessor<float, 4>();
  auto ta = tok.accessor<float, 2>();
  const int64_t gh = h / p, gw = w / p;
  for (int64_t tf = 0; tf < f / pf; ++tf)
    for (int64_t th = 0; th < gh; ++th)
      for (int64_t tw = 0; tw < gw; ++tw)
        for (int64_t a = 0; a < pf; ++a)
          for (int64_t b = 0; b < p; ++b)
            for (int64_t e = 0; e < p; ++e)
              for (int64_t ch = 0; ch < c; ++ch) {
                const int64_t token = (tf * gh + th) * gw + tw;
                const int64_t feat = ((a * p + b) * p + e) * c + ch;
                ASSERT_EQ(ta[token][feat],
                          xa[ch][tf * pf + a][th * p + b][tw * p + e]);
              }
}

TEST(Patchify, RoundTripOfMixedList) {
  torch::manual_seed(2);
  std::vector<torch::Tensor> items = {torch::randn({16, 1, 8, 8}),
                                      torch::randn({16, 4, 8, 12}),
                                      torch::randn({16, 2, 4, 4})};
  for (PatchComb patch : {PatchComb{1, 2}, PatchComb{2, 2}, PatchComb{2, 4}}) {
    PackedLayout layout;
    torch::Tensor tok = Patchify(items, patch, &layout);
    ASSERT_EQ(layout.cu_seqlens.size(), 4u);
    EXPECT_EQ(layout.cu_seqlens.back(), tok.size(0));
    // An image with pF > 1 is repeated: its token count is that of F = pF.
    EXPECT_EQ(layout.cu_seqlens[1], 64 / (patch.patch * patch.patch));
    std::vector<torch::Tensor> back = Unpatchify(tok, layout, patch);
    ASSERT_EQ(back.size(), items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      EXPECT_TRUE(torch::equal(back[i], items[i]))
          << patch.DiTKey() << " item " << i;
    }
    torch::Tensor ids = SourceIds(layout, torch::kCPU);
    EXPECT_EQ(ids[layout.cu_seqlens[2] - 1].item<int64_t>(), 1);
    EXPECT_EQ(ids[layout.cu_seqlens[2]].item<int64_t>(), 2);
  }
}

TEST(Patchify, RejectsIndivisibleSizes) {
  PackedLayout layout;
  EXPECT_THROW(
      Patchify({torch::zeros({16, 3, 8, 8})}, PatchComb{2, 2}, &layout),
      c10::Error);
  EXPECT_THROW(
      Patchify({torch::zeros({16, 2, 6, 8})}, PatchComb{2, 4}, &layout),
      c10::Error);
}

}  // namespace
}  // namespace lvs::dit
