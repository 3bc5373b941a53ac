// Admission against the limits workers publish (server/model_admission.h):
// what no worker can run is refused with the field and the rule, absent
// fields take the model's defaults, aliases resolve.
#include "server/model_admission.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace lvs::server {
namespace {

namespace v1 = ::lumina::video::v1;

v1::GenerateVideoRequest Prompt() {
  v1::GenerateVideoRequest r;
  r.set_prompt("a red fox in the snow");
  return r;
}

// Returns the violation of `field`, or "" when there is none.
std::string Violation(const google::rpc::BadRequest& bad,
                      const std::string& field) {
  for (const auto& v : bad.field_violations()) {
    if (v.field() == field) return v.description();
  }
  return "";
}

TEST(ModelAdmissionTest, AbsentFieldsTakeTheModelsDefaults) {
  v1::GenerateVideoRequest resolved;
  const google::rpc::BadRequest bad =
      AdmitToModels(Prompt(), {LuminaVideoLimits()}, "", &resolved);
  EXPECT_EQ(bad.field_violations_size(), 0) << bad.DebugString();
  EXPECT_EQ(resolved.width(), 1248);
  EXPECT_EQ(resolved.height(), 704);
  EXPECT_EQ(resolved.frames(), 96);
  EXPECT_EQ(resolved.fps(), 24);
  EXPECT_EQ(resolved.steps(), 70);
  EXPECT_EQ(resolved.model(), "");  // Any worker may still run it.
}

TEST(ModelAdmissionTest, AliasResolvesAndUnknownModelIsRefused) {
  v1::GenerateVideoRequest r = Prompt();
  r.set_model("lumina");
  v1::GenerateVideoRequest resolved;
  EXPECT_EQ(AdmitToModels(r, {LuminaVideoLimits()}, "", &resolved)
                .field_violations_size(),
            0);
  EXPECT_EQ(resolved.model(), "lumina-video");
  r.set_model("sora");
  const google::rpc::BadRequest bad =
      AdmitToModels(r, {LuminaVideoLimits()}, "video.", &resolved);
  EXPECT_NE(Violation(bad, "video.model").find("lumina-video"),
            std::string::npos);
}

TEST(ModelAdmissionTest, FrameRuleOfTheSampleConfig) {
  v1::GenerateVideoRequest resolved;
  for (int frames : {3, 13}) {
    v1::GenerateVideoRequest r = Prompt();
    r.set_frames(frames);
    const google::rpc::BadRequest bad =
        AdmitToModels(r, {LuminaVideoLimits()}, "", &resolved);
    EXPECT_NE(Violation(bad, "frames"), "") << frames;
  }
  // 12 frames = 3 latent frames: fine for the single-scale config only.
  v1::GenerateVideoRequest r = Prompt();
  r.set_frames(12);
  EXPECT_NE(Violation(AdmitToModels(r, {LuminaVideoLimits()}, "", &resolved),
                      "frames"),
            "");
  r.set_sample_config("f24F96R960");
  EXPECT_EQ(AdmitToModels(r, {LuminaVideoLimits()}, "", &resolved)
                .field_violations_size(),
            0);
}

// An explicit config is held to its own frame patches, not the default
// config's: 12 frames (3 latent frames) fit a 1x2 schedule, not a 2x4 one.
TEST(ModelAdmissionTest, ExplicitSampleUsesItsOwnFramePatches) {
  v1::GenerateVideoRequest r = Prompt();
  r.set_width(64);
  r.set_height(64);
  r.set_frames(12);
  r.mutable_sample()->mutable_patch()->set_initial("1x2");
  v1::GenerateVideoRequest resolved;
  google::rpc::BadRequest bad =
      AdmitToModels(r, {LuminaVideoLimits()}, "", &resolved);
  EXPECT_EQ(bad.field_violations_size(), 0) << bad.DebugString();
  r.mutable_sample()->mutable_patch()->set_initial("2x4");
  bad = AdmitToModels(r, {LuminaVideoLimits()}, "", &resolved);
  EXPECT_NE(Violation(bad, "frames"), "");
}

TEST(ModelAdmissionTest, UnknownSampleConfigAndPixelBudget) {
  v1::GenerateVideoRequest r = Prompt();
  r.set_sample_config("f99");
  v1::GenerateVideoRequest resolved;
  google::rpc::BadRequest bad =
      AdmitToModels(r, {LuminaVideoLimits()}, "", &resolved);
  EXPECT_NE(Violation(bad, "sample_config").find("f24F96R960-MultiScale"),
            std::string::npos);
  r = Prompt();
  r.set_width(1920);
  r.set_height(1088);
  bad = AdmitToModels(r, {LuminaVideoLimits()}, "", &resolved);
  EXPECT_NE(Violation(bad, "width").find("budget"), std::string::npos);
}

TEST(ModelAdmissionTest, AnyServingModelMayAccept) {
  v1::ModelLimits small = LuminaVideoLimits();
  small.set_id("small");
  small.clear_aliases();
  small.set_max_width(512);
  v1::ModelLimits big = LuminaVideoLimits();
  v1::GenerateVideoRequest r = Prompt();
  r.set_width(960);
  r.set_height(512);
  v1::GenerateVideoRequest resolved;
  EXPECT_EQ(
      AdmitToModels(r, {small, big}, "", &resolved).field_violations_size(), 0);
  r.set_model("small");
  EXPECT_NE(Violation(AdmitToModels(r, {small, big}, "", &resolved), "width"),
            "");
}

TEST(ModelAdmissionTest, NoModelsChecksNothing) {
  v1::GenerateVideoRequest resolved;
  EXPECT_EQ(AdmitToModels(Prompt(), {}, "", &resolved).field_violations_size(),
            0);
  EXPECT_EQ(resolved.width(), 0);
}

}  // namespace
}  // namespace lvs::server
