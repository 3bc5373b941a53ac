// The DiT over several CPU ranks (Gloo): sequence parallel 2 and 4, CFG
// parallel 2 and CFG 2 x SP 2 match one device (forward outputs and sampler
// trajectories within 1e-5 relative in fp32), on the golden checkpoint and
// on an architecture built from its layout with other head counts; step
// caching at threshold 0 is bit-identical to no caching and above 0 skips
// forwards while the first and last calls compute.
#include "model/parallel/parallel_dit.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "model/pipeline/dit_velocity.h"
#include "model/pipeline/step_cache.h"
#include "model/sampler/flow_sampler.h"
#include "tests/dit/dit_test_util.h"

namespace lvs::parallel {
namespace {

using dit::testing::MaxRelError;

constexpr double kTolerance = 1e-5;

const std::vector<ParallelLayout>& Layouts() {
  static const auto* layouts =
      new std::vector<ParallelLayout>{{1, 2}, {1, 4}, {2, 1}, {2, 2}};
  return *layouts;
}

// The golden DiT and one more architecture from its layout: one layer more,
// as many kv heads as heads, random weights.
std::vector<dit::MultiScaleNextDiT> Models() {
  static const auto* models = [] {
    auto* out = new std::vector<dit::MultiScaleNextDiT>();
    auto golden = dit::LoadDiT(LVS_GOLDEN_DIR "/dit");
    EXPECT_TRUE(golden.ok()) << golden.status();
    out->push_back(*golden);
    nlohmann::json args = dit::testing::ReadGoldenJson("dit/config.json");
    args["n_layers"] = args["n_layers"].get<int>() + 1;
    args["n_kv_heads"] = args["n_heads"];
    auto config = dit::DiTConfigFromArgs(args, "variant");
    EXPECT_TRUE(config.ok()) << config.status();
    torch::manual_seed(7);
    dit::MultiScaleNextDiT variant(*config);
    for (auto& p : variant->parameters()) {
      p.requires_grad_(false);
      p.normal_(0, 0.05);
    }
    variant->eval();
    out->push_back(variant);
    return out;
  }();
  return *models;
}

std::unique_ptr<ParallelDiT> Make(const dit::MultiScaleNextDiT& model,
                                  ParallelLayout layout) {
  auto p = ParallelDiT::Create(
      std::vector<dit::MultiScaleNextDiT>(layout.ranks(), model),
      std::vector<torch::Device>(layout.ranks(), torch::kCPU), layout,
      std::chrono::seconds(60));
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : nullptr;
}

// A guided batch [positive, negative] whose token count does not split
// evenly over 4 ranks, captions of different lengths.
struct Inputs {
  torch::Tensor x, t, cap, mask, motion;
};
Inputs GuidedInputs(int64_t cap_dim) {
  torch::manual_seed(3);
  Inputs in;
  in.x = torch::randn({2, 16, 3, 6, 10});
  in.t = torch::full({2}, 0.4f);
  in.cap = torch::randn({2, 7, cap_dim});
  in.mask = torch::ones({2, 7}, torch::kInt64);
  in.mask.index_put_({1, torch::indexing::Slice(4)}, 0);
  in.motion = torch::tensor({0.5f, -1.0f});
  return in;
}

TEST(ParallelDiTTest, ForwardMatchesOneDevice) {
  torch::NoGradGuard no_grad;
  for (dit::MultiScaleNextDiT model : Models()) {
    const Inputs in = GuidedInputs(model->config().cap_feat_dim);
    const torch::Tensor want =
        model->forward(in.x, in.t, in.cap, in.mask, in.motion, 2, 1);
    for (const ParallelLayout& layout : Layouts()) {
      auto p = Make(model, layout);
      ASSERT_NE(p, nullptr);
      sampler::VelocityFn v =
          p->Velocity(0, /*batch=*/1, /*total_calls=*/1, nullptr);
      auto got = v(in.x, in.t, in.cap, in.mask, in.motion, {1, 2});
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_LT(MaxRelError(*got, want), kTolerance) << layout.ToString();
    }
  }
}

// Runs the multi-scale config (patch switches, guidance turning off) for a
// few steps and returns every state.
std::vector<torch::Tensor> Trajectory(const sampler::VelocityFn& v,
                                      const dit::MultiScaleNextDiT& model,
                                      int steps) {
  const sampler::SampleConfig config =
      *sampler::NamedSampleConfig("f24F96R960-MultiScale");
  const torch::Tensor z =
      sampler::InitialNoise(11, {1, 16, 4, 8, 8}, torch::kFloat32);
  torch::manual_seed(5);
  const int64_t d = model->config().cap_feat_dim;
  sampler::Guidance g{torch::randn({2, 6, d}),
                      torch::ones({2, 6}, torch::kInt64)};
  sampler::SamplerOptions options;
  options.grid_points = steps;
  options.keep_states = true;
  auto result = sampler::SampleFlow(v, config, z, g, options);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? result->states : std::vector<torch::Tensor>{};
}

constexpr int kSteps = 9;

TEST(ParallelDiTTest, TrajectoryMatchesOneDevice) {
  for (dit::MultiScaleNextDiT model : Models()) {
    const auto want = Trajectory(pipeline::DiTVelocity(model), model, kSteps);
    ASSERT_EQ(want.size(), static_cast<size_t>(kSteps));
    for (const ParallelLayout& layout : Layouts()) {
      auto p = Make(model, layout);
      ASSERT_NE(p, nullptr);
      const auto got =
          Trajectory(p->Velocity(0, 1, kSteps - 1, nullptr), model, kSteps);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_LT(MaxRelError(got[i], want[i]), kTolerance)
            << layout.ToString() << " state " << i;
      }
    }
  }
}

TEST(StepCacheTest, ThresholdZeroIsBitIdentical) {
  const dit::MultiScaleNextDiT model = Models()[0];
  const auto want = Trajectory(pipeline::DiTVelocity(model), model, kSteps);
  auto counts = std::make_shared<pipeline::ForwardCounts>();
  const auto got =
      Trajectory(pipeline::CachedDiTVelocity(model, 0, 1, kSteps - 1, counts),
                 model, kSteps);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_TRUE(torch::equal(got[i], want[i])) << "state " << i;
  }
  EXPECT_EQ(counts->cached, 0);
  EXPECT_GT(counts->computed, kSteps - 1);  // Guided calls count twice.
}

TEST(StepCacheTest, SkipsBetweenComputedFirstAndLastCalls) {
  const dit::MultiScaleNextDiT model = Models()[0];
  constexpr int kLong = 24;
  auto counts = std::make_shared<pipeline::ForwardCounts>();
  sampler::VelocityFn cached =
      pipeline::CachedDiTVelocity(model, 1.0, 1, kLong - 1, counts);
  std::vector<int64_t> computed_per_call;
  sampler::VelocityFn recording =
      [&](const torch::Tensor& x, const torch::Tensor& t,
          const torch::Tensor& cap, const torch::Tensor& mask,
          const torch::Tensor& motion,
          const sampler::PatchComb& patch) -> absl::StatusOr<torch::Tensor> {
    const int64_t before = counts->computed;
    auto v = cached(x, t, cap, mask, motion, patch);
    computed_per_call.push_back(counts->computed - before);
    return v;
  };
  const auto states = Trajectory(recording, model, kLong);
  ASSERT_EQ(computed_per_call.size(), static_cast<size_t>(kLong - 1));
  EXPECT_GT(computed_per_call.front(), 0);
  EXPECT_GT(computed_per_call.back(), 0);
  EXPECT_GT(counts->cached, 0);
  EXPECT_GT(counts->computed, 0);
  EXPECT_TRUE(torch::isfinite(states.back()).all().item<bool>());

  // The same run over CFG 2 x SP 2 makes the same decisions.
  auto p = Make(model, {2, 2});
  ASSERT_NE(p, nullptr);
  auto parallel_counts = std::make_shared<pipeline::ForwardCounts>();
  const auto parallel_states =
      Trajectory(p->Velocity(1.0, 1, kLong - 1, parallel_counts), model, kLong);
  EXPECT_EQ(parallel_counts->computed, counts->computed);
  EXPECT_EQ(parallel_counts->cached, counts->cached);
  EXPECT_LT(MaxRelError(parallel_states.back(), states.back()), 1e-4);
}

TEST(ParallelLayoutTest, ChoosesCfgThenHeadsThatSplit) {
  EXPECT_EQ(ChooseLayout(4, 4, true).ToString(), "cfg2xsp2");
  EXPECT_EQ(ChooseLayout(4, 4, false).ToString(), "cfg1xsp4");
  EXPECT_EQ(ChooseLayout(2, 4, true).ToString(), "cfg2xsp1");
  EXPECT_EQ(ChooseLayout(3, 4, true).ToString(), "cfg1xsp1");
  EXPECT_EQ(ChooseLayout(8, 6, false).ToString(), "cfg1xsp2");
  EXPECT_EQ(ChooseLayout(1, 4, true).ToString(), "cfg1xsp1");
}

}  // namespace
}  // namespace lvs::parallel
