// Validation of every GenerationRequest field: each rejection is an
// InvalidArgument naming the field; the plan tells the actual frame count.
#include "model/pipeline/generation_request.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace lvs::pipeline {
namespace {

// The tiny golden DiT's patches (2,1), (2,2), (4,2) as FxP.
ModelLimits TinyLimits() {
  ModelLimits l;
  l.patches = {{1, 2}, {2, 2}, {2, 4}};
  return l;
}

GenerationRequest Valid() {
  GenerationRequest r;
  r.prompt = "a red panda";
  r.width = 64;
  r.height = 64;
  r.frames = 16;
  r.fps = 8;
  r.sample_config = "f24F96R960";
  r.grid_points = 9;
  return r;
}

// Expects InvalidArgument whose message starts with `field`.
void ExpectRejected(const GenerationRequest& r, const std::string& field,
                    const ModelLimits& limits = TinyLimits()) {
  auto plan = PlanGeneration(r, limits, /*cuda=*/false);
  ASSERT_FALSE(plan.ok()) << "accepted; expected a " << field << " error";
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(plan.status().message(), field))
      << plan.status();
}

TEST(GenerationRequestTest, ValidRequestIsPlanned) {
  auto plan = PlanGeneration(Valid(), TinyLimits(), false);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->latent_frames, 4);
  EXPECT_EQ(plan->output_frames, 16);
  EXPECT_EQ(plan->grid_points, 9);
  EXPECT_EQ(plan->config.grid_points, 9);
  EXPECT_EQ(plan->latent_shape, (std::array<int64_t, 5>{1, 16, 4, 8, 8}));
  EXPECT_EQ(plan->precision, Precision::kFloat32);
}

TEST(GenerationRequestTest, PromptMustBeNonEmptyAndBounded) {
  GenerationRequest r = Valid();
  r.prompt = " \t";
  ExpectRejected(r, "prompt");
  r.prompt = std::string(9000, 'a');
  ExpectRejected(r, "prompt");
  r = Valid();
  r.negative_prompt = std::string(9000, 'a');
  ExpectRejected(r, "negative_prompt");
}

TEST(GenerationRequestTest, ResolutionMultipleOf32WithinBudget) {
  GenerationRequest r = Valid();
  r.width = 48;
  ExpectRejected(r, "resolution (width)");
  r = Valid();
  r.height = 0;
  ExpectRejected(r, "resolution (height)");
  // 1248x704 is 858 cells, inside R960's 900; 1280x768 is 960, outside.
  r = Valid();
  r.width = 1248;
  r.height = 704;
  r.frames = 96;
  EXPECT_TRUE(PlanGeneration(r, TinyLimits(), false).ok());
  r.width = 1280;
  r.height = 768;
  ExpectRejected(r, "resolution");
  EXPECT_TRUE(ParseResolution("1248x704").ok());
  EXPECT_EQ(ParseResolution("1248x704")->at(1), 704);
  EXPECT_FALSE(ParseResolution("1248*704").ok());
  EXPECT_TRUE(
      absl::StartsWith(ParseResolution("x").status().message(), "resolution"));
}

TEST(GenerationRequestTest, RopeLimitsBoundTheLatent) {
  GenerationRequest r = Valid();
  ModelLimits l = TinyLimits();
  l.rope_max_positions = {64, 2, 128};  // 64 px high = 4 patches of 1x2.
  ExpectRejected(r, "resolution (height)", l);
  l.rope_max_positions = {3, 128, 128};  // 4 latent frames at pF 1.
  ExpectRejected(r, "frames", l);
}

TEST(GenerationRequestTest, FramesGiveAtLeastTwoLatents) {
  GenerationRequest r = Valid();
  r.frames = 7;
  ExpectRejected(r, "frames");
  r.frames = 12;  // 3 latents -> 4*3-3 = 9 frames.
  auto plan = PlanGeneration(r, TinyLimits(), false);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->output_frames, 9);
  // The MultiScale config uses pF = 2: 3 latents are not a multiple.
  r.sample_config = "f24F96R960-MultiScale";
  ExpectRejected(r, "frames");
}

TEST(GenerationRequestTest, FpsInRange) {
  GenerationRequest r = Valid();
  r.fps = 0;
  ExpectRejected(r, "fps");
  r.fps = 1000;
  ExpectRejected(r, "fps");
}

TEST(GenerationRequestTest, SampleConfigNamedOrExplicit) {
  GenerationRequest r = Valid();
  r.sample_config = "no-such-config";
  ExpectRejected(r, "sample_config");
  // A patch combination the checkpoint lacks.
  ModelLimits l = TinyLimits();
  l.patches = {{2, 2}};
  ExpectRejected(Valid(), "sample_config", l);
  // An explicit config wins over the name.
  r = Valid();
  auto config = sampler::NamedSampleConfig("f16F64R512");
  ASSERT_TRUE(config.ok());
  r.config = *config;
  r.sample_config = "ignored";
  auto plan = PlanGeneration(r, TinyLimits(), false);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->config.name, "f16F64R512");
  r.config->time_shift = -1;
  ExpectRejected(r, "sample_config");
}

TEST(GenerationRequestTest, StepsZeroOrInRange) {
  GenerationRequest r = Valid();
  r.grid_points = 1;
  ExpectRejected(r, "steps");
  r.grid_points = 5000;
  ExpectRejected(r, "steps");
  r.grid_points = 0;
  auto plan = PlanGeneration(r, TinyLimits(), false);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->grid_points, 70);
}

TEST(GenerationRequestTest, SeedIsCarried) {
  GenerationRequest r = Valid();
  r.seed = ~uint64_t{0};
  auto plan = PlanGeneration(r, TinyLimits(), false);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->request.seed, ~uint64_t{0});
}

TEST(GenerationRequestTest, DefaultIsBf16OnCudaAndAmxCpus) {
  EXPECT_TRUE(DefaultsToBf16(/*cuda=*/true, /*cpu_amx_bf16=*/false));
  EXPECT_TRUE(DefaultsToBf16(/*cuda=*/false, /*cpu_amx_bf16=*/true));
  EXPECT_FALSE(DefaultsToBf16(/*cuda=*/false, /*cpu_amx_bf16=*/false));
  // The plan follows the choice.
  EXPECT_EQ(PlanGeneration(Valid(), TinyLimits(), DefaultsToBf16(false, true))
                ->precision,
            Precision::kBFloat16);
  // An explicit request always wins.
  GenerationRequest fp32 = Valid();
  fp32.precision = Precision::kFloat32;
  EXPECT_EQ(PlanGeneration(fp32, TinyLimits(), DefaultsToBf16(false, true))
                ->precision,
            Precision::kFloat32);
}

TEST(GenerationRequestTest, PrecisionParsedAndDefaultedByDevice) {
  EXPECT_EQ(*ParsePrecision("bf16"), Precision::kBFloat16);
  EXPECT_EQ(*ParsePrecision("fp32"), Precision::kFloat32);
  EXPECT_EQ(*ParsePrecision(""), Precision::kDefault);
  auto bad = ParsePrecision("fp16");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StartsWith(bad.status().message(), "precision"));
  EXPECT_EQ(PlanGeneration(Valid(), TinyLimits(), true)->precision,
            Precision::kBFloat16);
  EXPECT_EQ(PlanGeneration(Valid(), TinyLimits(), false)->precision,
            Precision::kFloat32);
  GenerationRequest r = Valid();
  r.precision = Precision::kBFloat16;
  EXPECT_EQ(PlanGeneration(r, TinyLimits(), false)->precision,
            Precision::kBFloat16);
}

}  // namespace
}  // namespace lvs::pipeline
