// Multi-CFG guidance against hand computations with a fake velocity model:
// batch layout, unguided calls, `pos + cfg (pos - neg)`, renorm on `>=`,
// rounding of the result to the latent dtype.
#include "model/sampler/multi_cfg.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace lvs::sampler {
namespace {

// One recorded model call.
struct Seen {
  torch::Tensor x, t, cap_feats, cap_mask, motion;
  PatchComb patch;
};

// v[b] = x[b] * (1 + sum(cap_feats[b])) + motion[b] + t[b], computed in the
// input dtype (like a model would).
VelocityFn FakeModel(std::vector<Seen>* seen) {
  return [seen](const torch::Tensor& x, const torch::Tensor& t,
                const torch::Tensor& cap, const torch::Tensor& mask,
                const torch::Tensor& motion,
                const PatchComb& patch) -> absl::StatusOr<torch::Tensor> {
    seen->push_back({x.clone(), t.clone(), cap.clone(), mask.clone(),
                     motion.clone(), patch});
    torch::Tensor scale = (cap.to(torch::kFloat32).sum({1, 2}) + 1)
                              .view({-1, 1, 1, 1, 1});  // [B,1,1,1,1]
    torch::Tensor shift = (motion.to(torch::kFloat32) + t.to(torch::kFloat32))
                              .view({-1, 1, 1, 1, 1});  // [B,1,1,1,1]
    return (x.to(torch::kFloat32) * scale + shift).to(x.scalar_type());
  };
}

struct Fixture {
  torch::Tensor x = torch::randn({1, 4, 2, 4, 4});
  torch::Tensor t = torch::full({1}, 0.25f);
  Guidance guidance{torch::randn({2, 5, 3}) * 0.1,
                    torch::tensor({1, 1, 1, 0, 0, 1, 1, 0, 0, 0}).view({2, 5})};
};

// The fake model's output for sample x under caption row `row` and motion.
torch::Tensor Expected(const Fixture& f, int row, float motion) {
  const float scale = 1 + f.guidance.cap_feats[row].sum().item<float>();
  return f.x * scale + (motion + 0.25f);
}

double Norm(const torch::Tensor& v) {
  double s = 0;
  const torch::Tensor c = v.to(torch::kFloat64).contiguous();
  const double* p = c.data_ptr<double>();
  for (int64_t i = 0; i < c.numel(); ++i) s += p[i] * p[i];
  return std::sqrt(s);
}

ModelCall Call(double cfg, double m_pos, double m_neg) {
  ModelCall c;
  c.patch = {2, 2};
  c.cfg = cfg;
  c.motion_pos = m_pos;
  c.motion_neg = m_neg;
  return c;
}

TEST(MultiCfgTest, GuidedBatchReusesThePositiveLatent) {
  torch::manual_seed(1);
  Fixture f;
  std::vector<Seen> seen;
  auto v = MultiCfgVelocity(FakeModel(&seen), f.x, f.t, f.guidance,
                            Call(3.0, 6.0, 2.0), /*renorm=*/-1);
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_EQ(seen.size(), 1u);
  const Seen& s = seen[0];
  ASSERT_EQ(s.x.size(0), 2);
  EXPECT_TRUE(s.x[0].equal(f.x[0]));
  EXPECT_TRUE(s.x[1].equal(f.x[0]));  // negative branch: positive latent
  EXPECT_TRUE(s.t.equal(torch::full({2}, 0.25f)));
  EXPECT_TRUE(s.cap_feats.equal(f.guidance.cap_feats));
  EXPECT_TRUE(s.cap_mask.equal(f.guidance.cap_mask));
  EXPECT_TRUE(s.motion.equal(torch::tensor({6.0f, 2.0f})));
  EXPECT_EQ(s.patch, (PatchComb{2, 2}));

  const torch::Tensor pos = Expected(f, 0, 6), neg = Expected(f, 1, 2);
  const torch::Tensor want = pos + 3 * (pos - neg);  // 4 pos - 3 neg
  EXPECT_TRUE(v->guided);
  EXPECT_FALSE(v->renormalized);
  EXPECT_TRUE(torch::allclose(v->velocity, want, 1e-5, 1e-5));
}

TEST(MultiCfgTest, UnguidedRunsThePositiveRowOnly) {
  torch::manual_seed(2);
  Fixture f;
  std::vector<Seen> seen;
  auto v = MultiCfgVelocity(FakeModel(&seen), f.x, f.t, f.guidance,
                            Call(0.0, 6.0, 2.0), /*renorm=*/2);
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].x.size(0), 1);
  EXPECT_TRUE(seen[0].cap_feats.equal(f.guidance.cap_feats.slice(0, 0, 1)));
  EXPECT_TRUE(seen[0].motion.equal(torch::tensor({6.0f})));
  EXPECT_FALSE(v->guided);
  EXPECT_TRUE(torch::allclose(v->velocity, Expected(f, 0, 6), 1e-6, 1e-6));
}

TEST(MultiCfgTest, RenormScalesToTheCapWhenReached) {
  torch::manual_seed(3);
  Fixture f;
  std::vector<Seen> seen;
  auto v = MultiCfgVelocity(FakeModel(&seen), f.x, f.t, f.guidance,
                            Call(20.0, 6.0, 2.0), /*renorm=*/2);
  ASSERT_TRUE(v.ok());
  const torch::Tensor pos = Expected(f, 0, 6), neg = Expected(f, 1, 2);
  const torch::Tensor guided = pos + 20 * (pos - neg);
  const double n0 = Norm(pos), n1 = Norm(guided);
  ASSERT_GE(n1, 2 * n0);  // the fixture makes guidance large
  EXPECT_TRUE(v->renormalized);
  EXPECT_NEAR(v->pos_norm, n0, 1e-4 * n0);
  EXPECT_NEAR(v->guided_norm, n1, 1e-4 * n1);
  EXPECT_NEAR(Norm(v->velocity), 2 * n0, 1e-4 * n0);
  EXPECT_TRUE(torch::allclose(v->velocity, guided * (2 * n0 / n1), 1e-4, 1e-5));
}

TEST(MultiCfgTest, RenormFiresOnEqualityOnly) {
  // pos = ones (norm 2 over 4 values), neg = 0, cfg 1: guided = 2 pos,
  // norm 4 = 2 * ||pos||, so renorm 2 fires (>=) and leaves it unchanged.
  const torch::Tensor pos = torch::ones({1, 1, 1, 2, 2});
  const torch::Tensor neg = torch::zeros({1, 1, 1, 2, 2});
  GuidedVelocity at_cap;
  CombineGuidance(pos, neg, 1.0, 2.0, at_cap);
  EXPECT_TRUE(at_cap.renormalized);
  EXPECT_TRUE(at_cap.velocity.equal(2 * pos));
  GuidedVelocity below;
  CombineGuidance(pos, neg, 1.0, 2.001, below);
  EXPECT_FALSE(below.renormalized);
  EXPECT_TRUE(below.velocity.equal(2 * pos));
  GuidedVelocity above;
  CombineGuidance(pos, neg, 1.0, 1.5, above);
  EXPECT_TRUE(above.renormalized);
  EXPECT_TRUE(torch::allclose(above.velocity, 1.5 * pos));
  GuidedVelocity off;
  CombineGuidance(pos, neg, 1.0, -1, off);
  EXPECT_FALSE(off.renormalized);
}

TEST(MultiCfgTest, RenormIsPerSample) {
  // Sample 0 exceeds its cap, sample 1 does not.
  const torch::Tensor pos = torch::ones({2, 1, 1, 1, 4});
  torch::Tensor neg = torch::zeros({2, 1, 1, 1, 4});
  neg[1].fill_(0.9);
  GuidedVelocity out;
  CombineGuidance(pos, neg, 4.0, 2.0, out);
  // Sample 0: 5 * pos (norm 10) capped to 4; sample 1: 1.4 * pos kept.
  EXPECT_TRUE(torch::allclose(out.velocity[0], 2 * pos[0]));
  EXPECT_TRUE(torch::allclose(out.velocity[1], 1.4 * pos[1]));
  EXPECT_TRUE(out.renormalized);
}

TEST(MultiCfgTest, Bf16ResultIsTheRoundedFloat32Combination) {
  torch::manual_seed(4);
  Fixture f;
  f.x = f.x.to(torch::kBFloat16);
  Guidance g{f.guidance.cap_feats.to(torch::kBFloat16), f.guidance.cap_mask};
  std::vector<Seen> seen;
  auto v = MultiCfgVelocity(FakeModel(&seen), f.x, f.t.to(torch::kBFloat16), g,
                            Call(5, 6, 2), -1);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->velocity.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(seen[0].motion.scalar_type(), torch::kBFloat16);
  // Combination in float32 of the bf16 model outputs, then one rounding.
  auto model = FakeModel(&seen);
  auto out = model(torch::cat({f.x, f.x}),
                   torch::full({2}, 0.25f).to(torch::kBFloat16), g.cap_feats,
                   g.cap_mask, torch::tensor({6.0f, 2.0f}).to(torch::kBFloat16),
                   {2, 2});
  ASSERT_TRUE(out.ok());
  const torch::Tensor o = out->to(torch::kFloat32);
  const torch::Tensor want = (o[0] + (o[0] - o[1]) * 5).to(torch::kBFloat16);
  EXPECT_TRUE(v->velocity[0].equal(want));
}

TEST(MultiCfgTest, ShapeErrors) {
  Fixture f;
  std::vector<Seen> seen;
  Guidance bad{f.guidance.cap_feats.slice(0, 0, 1), f.guidance.cap_mask};
  auto v = MultiCfgVelocity(FakeModel(&seen), f.x, f.t, bad, Call(1, 6, 2), 2);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find("cap_feats"), std::string::npos);
  auto wrong_out = [](const torch::Tensor& x, const torch::Tensor&,
                      const torch::Tensor&, const torch::Tensor&,
                      const torch::Tensor&,
                      const PatchComb&) -> absl::StatusOr<torch::Tensor> {
    return x.slice(0, 0, 1);
  };
  v = MultiCfgVelocity(wrong_out, f.x, f.t, f.guidance, Call(1, 6, 2), 2);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace lvs::sampler
