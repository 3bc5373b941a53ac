// The Euler flow sampler with fake velocity models: exact float32 updates, a
// linear ODE with a known Euler answer, the times/dtypes/values each call
// sees, progress callbacks, cancellation and error propagation; the seeded
// initial noise as a tensor; bf16 time rounding equal to torch's.
#include "model/sampler/flow_sampler.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "model/sampler/noise.h"

namespace lvs::sampler {
namespace {

Guidance TwoCaptions() {
  return {torch::zeros({2, 3, 4}), torch::ones({2, 3}, torch::kInt64)};
}

SampleConfig Unguided(int steps) {
  SampleConfig c = *NamedSampleConfig("f16F64R512");
  c.cfg = {0, {}};
  c.grid_points = steps;
  return c;
}

// v = a * x (positive rows only matter; cfg is 0).
VelocityFn Linear(float a, int* calls) {
  return [a, calls](const torch::Tensor& x, const torch::Tensor&,
                    const torch::Tensor&, const torch::Tensor&,
                    const torch::Tensor&,
                    const PatchComb&) -> absl::StatusOr<torch::Tensor> {
    ++*calls;
    return x * a;
  };
}

TEST(FlowSamplerTest, EulerOnALinearOdeMatchesTheProductFormula) {
  const SampleConfig config = Unguided(12);
  const torch::Tensor z = InitialNoise(7, {1, 2, 1, 3, 3});
  int calls = 0;
  SamplerOptions options;
  options.keep_states = true;
  auto r =
      SampleFlow(Linear(-0.75f, &calls), config, z, TwoCaptions(), options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(calls, 11);
  ASSERT_EQ(r->states.size(), 12u);
  EXPECT_TRUE(r->states[0].equal(z));
  // x_N = z * prod(1 - 0.75 dt_i) for Euler on dx/dt = -0.75 x.
  const std::vector<float> grid = *ShiftedTimeGrid(12, config.time_shift);
  double factor = 1;
  for (int i = 0; i + 1 < 12; ++i) factor *= 1 - 0.75 * (grid[i + 1] - grid[i]);
  EXPECT_TRUE(torch::allclose(r->latent, z * factor, 1e-5, 1e-6));
}

TEST(FlowSamplerTest, UpdateIsTheFloat32EulerStepBitForBit) {
  const SampleConfig config = Unguided(9);
  const torch::Tensor z = InitialNoise(3, {1, 1, 1, 2, 4});
  const torch::Tensor c = InitialNoise(4, {1, 1, 1, 2, 4});
  auto constant = [c](const torch::Tensor& x, const torch::Tensor&,
                      const torch::Tensor&, const torch::Tensor&,
                      const torch::Tensor&,
                      const PatchComb&) -> absl::StatusOr<torch::Tensor> {
    return c.to(x.scalar_type());
  };
  auto r = SampleFlow(constant, config, z, TwoCaptions(), {});
  ASSERT_TRUE(r.ok()) << r.status();
  const std::vector<float> grid = *ShiftedTimeGrid(9, config.time_shift);
  auto zc = z.contiguous(), cc = c.contiguous(), got = r->latent.contiguous();
  for (int64_t k = 0; k < z.numel(); ++k) {
    float x = zc.data_ptr<float>()[k];
    for (int i = 0; i + 1 < 9; ++i) {
      volatile float dt = grid[i + 1] - grid[i];
      volatile float dx = dt * cc.data_ptr<float>()[k];
      x = x + dx;
    }
    EXPECT_EQ(got.data_ptr<float>()[k], x) << k;
  }
}

TEST(FlowSamplerTest, CallsSeeModelDtypeTimesAndResolvedValues) {
  const SampleConfig config = *NamedSampleConfig("f24F96R960-MultiScale");
  struct Seen {
    torch::ScalarType x_dtype;
    int64_t batch;
    float t;
    float motion_neg;
    PatchComb patch;
  };
  std::vector<Seen> seen;
  auto model = [&seen](
                   const torch::Tensor& x, const torch::Tensor& t,
                   const torch::Tensor&, const torch::Tensor&,
                   const torch::Tensor& motion,
                   const PatchComb& patch) -> absl::StatusOr<torch::Tensor> {
    seen.push_back({x.scalar_type(), x.size(0), t[0].item<float>(),
                    motion[motion.size(0) - 1].item<float>(), patch});
    return torch::zeros_like(x);
  };
  SamplerOptions options;
  options.dtype = torch::kBFloat16;
  options.grid_points = 70;
  auto r = SampleFlow(model, config, torch::zeros({1, 16, 2, 8, 8}),
                      TwoCaptions(), options);
  ASSERT_TRUE(r.ok()) << r.status();
  auto plan = PlanModelCalls(config, 70, TimePrecision::kBFloat16);
  ASSERT_EQ(seen.size(), plan->size());
  for (size_t i = 0; i < seen.size(); ++i) {
    const ModelCall& p = (*plan)[i];
    EXPECT_EQ(seen[i].x_dtype, torch::kBFloat16);
    EXPECT_EQ(seen[i].batch, p.guided() ? 2 : 1) << i;
    EXPECT_EQ(seen[i].t, p.t_model) << i;
    EXPECT_EQ(seen[i].patch, p.patch) << i;
    if (p.guided()) {
      EXPECT_EQ(seen[i].motion_neg, p.motion_neg) << i;
    }
  }
  EXPECT_EQ(seen.back().t, 0.73828125f);  // README 6: bf16 of 0.739130
}

TEST(FlowSamplerTest, ProgressCallbackReportsEveryStep) {
  const SampleConfig config = *NamedSampleConfig("f24F96R960");
  std::vector<StepInfo> steps;
  SamplerOptions options;
  options.grid_points = 9;
  options.on_step = [&steps](const StepInfo& s) { steps.push_back(s); };
  int calls = 0;
  auto r = SampleFlow(Linear(0, &calls), config, torch::zeros({1, 1, 1, 2, 2}),
                      TwoCaptions(), options);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(steps.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(steps[i].index, i);
    EXPECT_EQ(steps[i].denoise_steps, 8);
    EXPECT_EQ(steps[i].t, r->calls[i].t_model);
    EXPECT_EQ(steps[i].guided, i < 7);  // t = 0.2258 >= 0.2 at the last call
    EXPECT_EQ(steps[i].patch.ToString(), "1x2");
    if (i > 0) {
      EXPECT_GE(steps[i].elapsed_s, steps[i - 1].elapsed_s);
    }
  }
}

TEST(FlowSamplerTest, CancellationStopsBeforeTheNextStep) {
  int calls = 0;
  SamplerOptions options;
  options.cancelled = [&calls] { return calls >= 3; };
  auto r = SampleFlow(Linear(1, &calls), Unguided(20),
                      torch::zeros({1, 1, 1, 2, 2}), TwoCaptions(), options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, 3);
  EXPECT_NE(r.status().message().find("step 3 of 19"), std::string::npos)
      << r.status();
}

TEST(FlowSamplerTest, ModelErrorsPropagate) {
  int calls = 0;
  auto failing = [&calls](const torch::Tensor& x, const torch::Tensor&,
                          const torch::Tensor&, const torch::Tensor&,
                          const torch::Tensor&,
                          const PatchComb&) -> absl::StatusOr<torch::Tensor> {
    if (++calls == 2) return absl::InvalidArgumentError("patch 9x9 missing");
    return torch::zeros_like(x);
  };
  auto r = SampleFlow(failing, Unguided(6), torch::zeros({1, 1, 1, 2, 2}),
                      TwoCaptions(), {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  auto throwing = [](const torch::Tensor& x, const torch::Tensor&,
                     const torch::Tensor&, const torch::Tensor&,
                     const torch::Tensor&,
                     const PatchComb&) -> absl::StatusOr<torch::Tensor> {
    return x.view({-1, 7});  // throws
  };
  r = SampleFlow(throwing, Unguided(6), torch::zeros({1, 1, 1, 2, 2}),
                 TwoCaptions(), {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("sampler step 0"), std::string::npos);
  SamplerOptions fp16;
  fp16.dtype = torch::kHalf;
  r = SampleFlow(throwing, Unguided(6), torch::zeros({1, 1, 1, 2, 2}),
                 TwoCaptions(), fp16);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FlowSamplerTest, InitialNoiseIsTheSeededStream) {
  const torch::Tensor a = InitialNoise(99, {1, 16, 2, 4, 6});
  EXPECT_EQ(a.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(a.equal(InitialNoise(99, {1, 16, 2, 4, 6})));
  EXPECT_FALSE(a.equal(InitialNoise(100, {1, 16, 2, 4, 6})));
  const std::vector<float> ref = GaussianNoise(99, a.numel());
  EXPECT_TRUE(a.flatten().equal(torch::tensor(ref)));
  const torch::Tensor b = InitialNoise(99, {1, 16, 2, 4, 6}, torch::kBFloat16);
  EXPECT_TRUE(b.equal(a.to(torch::kBFloat16)));
}

TEST(FlowSamplerTest, RoundTimeEqualsTorchBf16Conversion) {
  torch::manual_seed(5);
  const torch::Tensor t = torch::cat(
      {torch::rand({20000}), torch::rand({2000}) * 1e-3,
       torch::tensor({0.0f, 1.0f, 0.19999996f, 0.7391304f, 1.00390625f})});
  const torch::Tensor rounded = t.to(torch::kBFloat16).to(torch::kFloat32);
  const float* in = t.data_ptr<float>();
  const float* want = rounded.data_ptr<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    ASSERT_EQ(RoundTime(in[i], TimePrecision::kBFloat16), want[i]) << in[i];
  }
}

}  // namespace
}  // namespace lvs::sampler
