// Tiled, varlen attention against a naive dense reference.
#include "model/dit/attention_kernels.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cmath>
#include <tuple>

namespace lvs::dit {
namespace {

// Dense softmax(q k^T * scale) v in float64 with explicit GQA head mapping.
torch::Tensor NaiveAttention(const torch::Tensor& q, const torch::Tensor& k,
                             const torch::Tensor& v, double scale) {
  const int64_t n_rep = q.size(1) / k.size(1);
  // [L, H, D] -> [H, L, D]
  torch::Tensor qh = q.to(torch::kFloat64).permute({1, 0, 2});
  torch::Tensor kh =
      k.to(torch::kFloat64).repeat_interleave(n_rep, 1).permute({1, 0, 2});
  torch::Tensor vh =
      v.to(torch::kFloat64).repeat_interleave(n_rep, 1).permute({1, 0, 2});
  torch::Tensor p =
      torch::softmax(torch::bmm(qh, kh.transpose(1, 2)) * scale, -1);
  return torch::bmm(p, vh).permute({1, 0, 2});  // [H, L, D] -> [L, H, D]
}

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64))
      .abs()
      .max()
      .item<double>();
}

class TiledAttentionTest
    : public ::testing::TestWithParam<
          std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>> {};

TEST_P(TiledAttentionTest, MatchesNaive) {
  const auto [lq, lk, heads, kv_heads, block] = GetParam();
  torch::manual_seed(lq * 131 + lk * 7 + heads + block);
  const int64_t d = 24;
  // Large-magnitude scores exercise the running maximum of the online softmax.
  torch::Tensor q = torch::randn({lq, heads, d}) * 3;
  torch::Tensor k = torch::randn({lk, kv_heads, d}) * 3;
  torch::Tensor v = torch::randn({lk, kv_heads, d});
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  AttentionOptions opt;
  opt.q_block = block;
  opt.k_block = block + 3;  // Key tiles that do not align with query tiles.
  torch::Tensor got = TiledAttention(q, k, v, scale, opt);
  ASSERT_EQ(got.sizes(), q.sizes());
  EXPECT_LT(MaxAbsDiff(got, NaiveAttention(q, k, v, scale)), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Shapes, TiledAttentionTest,
                         ::testing::Values(std::make_tuple(1, 1, 1, 1, 1),
                                           std::make_tuple(37, 53, 4, 2, 8),
                                           std::make_tuple(100, 100, 4, 4, 16),
                                           std::make_tuple(65, 129, 6, 2, 64),
                                           std::make_tuple(33, 7, 4, 1, 5),
                                           std::make_tuple(200, 301, 2, 1,
                                                           1000)));

TEST(VarlenAttention, PackedEqualsPerItem) {
  torch::manual_seed(3);
  const int64_t h = 4, hkv = 2, d = 16;
  const std::vector<int64_t> lq = {13, 1, 40}, lk = {7, 5, 22};
  std::vector<torch::Tensor> qs, ks, vs;
  std::vector<int64_t> cu_q = {0}, cu_k = {0};
  for (size_t i = 0; i < lq.size(); ++i) {
    qs.push_back(torch::randn({lq[i], h, d}));
    ks.push_back(torch::randn({lk[i], hkv, d}));
    vs.push_back(torch::randn({lk[i], hkv, d}));
    cu_q.push_back(cu_q.back() + lq[i]);
    cu_k.push_back(cu_k.back() + lk[i]);
  }
  AttentionOptions opt;
  opt.q_block = 8;
  opt.k_block = 6;
  torch::Tensor packed = VarlenAttention(torch::cat(qs), torch::cat(ks),
                                         torch::cat(vs), cu_q, cu_k, 0.25, opt);
  for (size_t i = 0; i < lq.size(); ++i) {
    torch::Tensor item = packed.narrow(0, cu_q[i], lq[i]);
    EXPECT_LT(MaxAbsDiff(item, NaiveAttention(qs[i], ks[i], vs[i], 0.25)), 1e-5)
        << i;
    // Per-item calls of the same kernel give the same bits.
    EXPECT_TRUE(
        torch::equal(item, TiledAttention(qs[i], ks[i], vs[i], 0.25, opt)))
        << i;
  }
}

TEST(VarlenAttention, ItemWithoutKeysGivesZeros) {
  torch::Tensor q = torch::randn({5, 2, 8});
  torch::Tensor k = torch::randn({3, 1, 8});
  torch::Tensor out = VarlenAttention(q, k, k, {0, 2, 5}, {0, 3, 3}, 0.5);
  EXPECT_TRUE(torch::equal(out.narrow(0, 2, 3), torch::zeros({3, 2, 8})));
  EXPECT_LT(MaxAbsDiff(out.narrow(0, 0, 2),
                       NaiveAttention(q.narrow(0, 0, 2), k, k, 0.5)),
            1e-5);
}

TEST(VarlenAttention, RejectsInconsistentOffsets) {
  torch::Tensor q = torch::randn({5, 2, 8});
  EXPECT_THROW(VarlenAttention(q, q, q, {0, 4}, {0, 5}, 1.0), c10::Error);
  EXPECT_THROW(VarlenAttention(q, q, q, {0, 5}, {0, 2, 5}, 1.0), c10::Error);
}

TEST(TiledAttention, Bf16RoundsOnceFromFloat32) {
  torch::manual_seed(5);
  torch::Tensor q = torch::randn({50, 4, 32}).to(torch::kBFloat16);
  torch::Tensor k = torch::randn({70, 2, 32}).to(torch::kBFloat16);
  torch::Tensor v = torch::randn({70, 2, 32}).to(torch::kBFloat16);
  AttentionOptions opt;
  opt.q_block = 16;
  opt.k_block = 20;
  torch::Tensor got = TiledAttention(q, k, v, 0.2, opt);
  ASSERT_EQ(got.scalar_type(), torch::kBFloat16);
  // The float32 computation on the same bf16 values, rounded once.
  torch::Tensor want =
      NaiveAttention(q, k, v, 0.2).to(torch::kFloat32).to(torch::kBFloat16);
  const double ulp = std::pow(2.0, -8);
  EXPECT_LE(MaxAbsDiff(got, want), ulp * want.abs().max().item<double>());
  EXPECT_GT(torch::eq(got, want).to(torch::kFloat32).mean().item<double>(),
            0.95);
}

// On CUDA builds of LibTorch >= 2.1 the packed call goes through
// scaled_dot_product_attention; it must agree with the tiled kernel.
TEST(VarlenAttention, CudaPathMatchesTiledKernel) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(7);
  const std::vector<int64_t> cu_q = {0, 300, 301, 1000},
                             cu_k = {0, 13, 20, 276};
  torch::Tensor q = torch::randn({1000, 16, 144});
  torch::Tensor k = torch::randn({276, 8, 144});
  torch::Tensor v = torch::randn({276, 8, 144});
  AttentionOptions tiled;
  tiled.allow_sdpa = false;
  torch::Tensor cpu = VarlenAttention(q, k, v, cu_q, cu_k, 1 / 12.0, tiled);
  torch::Tensor gpu =
      VarlenAttention(q.cuda(), k.cuda(), v.cuda(), cu_q, cu_k, 1 / 12.0);
  EXPECT_LT(MaxAbsDiff(gpu.cpu(), cpu), 1e-4);
}

}  // namespace
}  // namespace lvs::dit
