// Pre-flight checks of a sample config against the golden DiT checkpoint
// (patches (P, pF) = (2,1), (2,2), (4,2)).
#include "model/pipeline/dit_velocity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace lvs::pipeline {
namespace {

using sampler::NamedSampleConfig;
using sampler::NamedSampleConfigNames;
using sampler::OverrideSampleConfigField;
using sampler::SampleConfig;
using ::testing::HasSubstr;

class DiTVelocityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto model = dit::LoadDiT(LVS_GOLDEN_DIR "/dit");
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = new dit::MultiScaleNextDiT(*model);
  }
  static dit::MultiScaleNextDiT* model_;
};
dit::MultiScaleNextDiT* DiTVelocityTest::model_ = nullptr;

TEST_F(DiTVelocityTest, AcceptsFittingConfigs) {
  for (const std::string& name : NamedSampleConfigNames()) {
    EXPECT_TRUE(CheckSampleConfigForDiT(*NamedSampleConfig(name), *model_,
                                        {1, 16, 4, 32, 64})
                    .ok())
        << name;
  }
  // An image latent (F = 1) fits temporal patches too.
  EXPECT_TRUE(
      CheckSampleConfigForDiT(*NamedSampleConfig("f24F96R960-MultiScale"),
                              *model_, {1, 16, 1, 8, 8})
          .ok());
}

TEST_F(DiTVelocityTest, RejectsMissingPatchAndBadSizes) {
  SampleConfig config = *NamedSampleConfig("f24F96R960");
  ASSERT_TRUE(
      OverrideSampleConfigField(config, "P", "(\"1x2\",(0.5,\"1x4\"))").ok());
  absl::Status s = CheckSampleConfigForDiT(config, *model_, {1, 16, 4, 32, 64});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(),
              HasSubstr("1x4 (DiT key 4-1) is not in the checkpoint"));
  EXPECT_THAT(s.message(), HasSubstr("2-1, 2-2, 4-2"));

  const SampleConfig multi = *NamedSampleConfig("f24F96R960-MultiScale");
  s = CheckSampleConfigForDiT(multi, *model_, {1, 16, 4, 34, 64});
  EXPECT_THAT(s.message(), HasSubstr("2x4: latent height 34"));
  s = CheckSampleConfigForDiT(multi, *model_, {1, 16, 3, 32, 64});
  EXPECT_THAT(s.message(), HasSubstr("latent frames 3"));
}

TEST_F(DiTVelocityTest, VelocityIsTheDiTForward) {
  torch::manual_seed(0);
  const torch::Tensor x = torch::randn({1, 16, 2, 8, 8});
  const torch::Tensor t = torch::full({1}, 0.3f);
  const torch::Tensor cap = torch::randn({1, 5, 48});
  const torch::Tensor mask = torch::ones({1, 5}, torch::kInt64);
  const torch::Tensor motion = torch::full({1}, 6.0f);
  torch::NoGradGuard no_grad;
  auto v = DiTVelocity(*model_)(x, t, cap, mask, motion, {2, 2});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->equal((*model_)->forward(x, t, cap, mask, motion, 2, 2)));
  auto bad = DiTVelocity(*model_)(x, t, cap, mask, motion, {1, 4});
  EXPECT_FALSE(bad.ok());
}

}  // namespace
}  // namespace lvs::pipeline
