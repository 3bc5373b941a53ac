// Sample configs: the built-in table, the time-aware syntax (good and bad
// input) and the JSON form of the golden sidecars.
#include "model/sampler/sample_config.h"

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"

namespace lvs::sampler {
namespace {

using ::testing::HasSubstr;

TEST(SampleConfigTest, NamedConfigsHaveTheReferenceValues) {
  EXPECT_THAT(NamedSampleConfigNames(),
              ::testing::ElementsAre("f24F96R960", "f24F96R960-MultiScale",
                                     "f16F64R512", "f16F64R512-MultiScale"));
  auto c = NamedSampleConfig("f24F96R960-MultiScale");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->grid_points, 70);
  EXPECT_EQ(c->time_shift, 24.0);
  EXPECT_EQ(c->renorm, 2);
  EXPECT_EQ(FormatTimeAware(c->patch),
            "(\"2x4\",(0.03,\"2x2\"),(0.125,\"1x2\"))");
  EXPECT_EQ(FormatTimeAware(c->cfg), "(20,(0.2,0))");
  EXPECT_EQ(FormatTimeAware(c->motion), "6");
  EXPECT_EQ(FormatTimeAware(c->neg_motion), "(2,(0.05,6))");
  auto f16 = NamedSampleConfig("f16F64R512");
  ASSERT_TRUE(f16.ok());
  EXPECT_EQ(f16->time_shift, 8.0);
  EXPECT_EQ(f16->renorm, -1);
  EXPECT_EQ(FormatTimeAware(f16->cfg), "(12,(0.4,0))");
}

TEST(SampleConfigTest, UnknownNameListsKnownOnes) {
  auto c = NamedSampleConfig("f24F96R961");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("f24F96R961"));
  EXPECT_THAT(c.status().message(), HasSubstr("f16F64R512-MultiScale"));
}

TEST(SampleConfigTest, TimeAwareWalkStopsAtFirstSmallerThreshold) {
  TimeAware<double> v{1, {{0.1, 2}, {0.5, 3}, {0.3, 4}}};
  EXPECT_EQ(v.At(0.0), 1);
  EXPECT_EQ(v.At(0.1), 2);  // t >= thr takes the value
  EXPECT_EQ(v.At(0.49), 2);
  EXPECT_EQ(v.At(0.5), 4);  // 0.5 >= 0.5, then 0.5 >= 0.3
  EXPECT_EQ(v.At(0.4), 2);  // stops at 0.5 before reaching 0.3
}

TEST(SampleConfigTest, ParsesPatchSchedules) {
  auto p = ParseTimeAwarePatch(R"(("2x4",(0.03,"2x2"),(0.125,"1x2")))");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->default_value, (PatchComb{2, 4}));
  ASSERT_EQ(p->steps.size(), 2u);
  EXPECT_EQ(p->steps[0].first, 0.03);
  EXPECT_EQ(p->steps[1].second, (PatchComb{1, 2}));
  EXPECT_EQ(p->At(0.02).ToString(), "2x4");
  EXPECT_EQ(p->At(0.03).ToString(), "2x2");
  EXPECT_EQ(p->At(0.2).DiTKey(), "2-1");
  // Single quotes, brackets, spaces, a bare FxP and a trailing comma.
  auto q = ParseTimeAwarePatch(" [ '2x4' , [0.5, 1x2], ] ");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->At(0.6), (PatchComb{1, 2}));
  auto plain = ParseTimeAwarePatch("\"1x2\"");
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->steps.empty());
}

TEST(SampleConfigTest, ParsesNumberSchedules) {
  auto cfg = ParseTimeAwareNumber("(20,(0.2,0))", "cfg");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->At(0.19999995827674866), 20);
  EXPECT_EQ(cfg->At(0.2001953125), 0);
  auto scalar = ParseTimeAwareNumber("6.5", "motion");
  ASSERT_TRUE(scalar.ok());
  EXPECT_EQ(scalar->At(0.9), 6.5);
  auto neg =
      ParseTimeAwareNumber("(2.0, (0.05, 6.0), (0.5, -1e1))", "negMotion");
  ASSERT_TRUE(neg.ok());
  EXPECT_EQ(neg->At(0.7), -10);
}

TEST(SampleConfigTest, BadInputNamesTheField) {
  struct Bad {
    const char* field;
    const char* text;
    const char* expect;
  };
  const Bad bad[] = {
      {"cfg", "(20,(0.2))", "pair 1 must be (threshold, value)"},
      {"cfg", "(20,(0.2,0)", "expected ',' or ')'"},
      {"cfg", "(\"x\",(0.2,0))", "default value must be a number"},
      {"cfg", "(20,(0.2,0)) junk", "unexpected trailing text"},
      {"cfg", "", "missing value"},
      {"cfg", "()", "empty tuple"},
      {"motion", "(6,(nan,1))", "must be finite"},
      {"negMotion", "(2,('a',6))", "threshold must be a number"},
  };
  for (const Bad& b : bad) {
    auto v = ParseTimeAwareNumber(b.text, b.field);
    ASSERT_FALSE(v.ok()) << b.text;
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(v.status().message(),
                HasSubstr(absl::StrCat("\"", b.field, "\"")));
    EXPECT_THAT(v.status().message(), HasSubstr(b.expect)) << b.text;
  }
  for (const char* text : {"\"2y4\"", "\"0x2\"", "(\"2x4\",(0.1,3))", "2",
                           "\"2x\"", "(\"1x2\",(0.1,\"-1x2\"))"}) {
    auto p = ParseTimeAwarePatch(text);
    ASSERT_FALSE(p.ok()) << text;
    EXPECT_THAT(p.status().message(), HasSubstr("\"P\"")) << text;
  }
}

TEST(SampleConfigTest, OverridesFieldsAndValidates) {
  auto c = NamedSampleConfig("f24F96R960");
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(
      OverrideSampleConfigField(*c, "P", "(\"2x2\",(0.1,\"1x2\"))").ok());
  ASSERT_TRUE(OverrideSampleConfigField(*c, "cfg", "(7.5,(0.5,0))").ok());
  ASSERT_TRUE(OverrideSampleConfigField(*c, "step", "30").ok());
  ASSERT_TRUE(OverrideSampleConfigField(*c, "ts", "6").ok());
  EXPECT_EQ(c->name, "f24F96R960+custom");
  EXPECT_EQ(c->grid_points, 30);
  EXPECT_EQ(c->time_shift, 6);
  EXPECT_EQ(c->cfg.At(0.4), 7.5);
  EXPECT_EQ(c->patch.At(0.0), (PatchComb{2, 2}));

  SampleConfig before = *c;
  absl::Status s = OverrideSampleConfigField(*c, "step", "1");
  EXPECT_THAT(s.message(), HasSubstr("\"step\""));
  s = OverrideSampleConfigField(*c, "ts", "0");
  EXPECT_THAT(s.message(), HasSubstr("\"ts\""));
  s = OverrideSampleConfigField(*c, "renorm", "two");
  EXPECT_THAT(s.message(), HasSubstr("\"renorm\""));
  s = OverrideSampleConfigField(*c, "guidance", "3");
  EXPECT_THAT(s.message(), HasSubstr("unknown field"));
  EXPECT_EQ(*c, before);  // Failed overrides leave the config unchanged.
}

TEST(SampleConfigTest, GoldenSidecarConfigsEqualTheBuiltInTable) {
  std::ifstream in(LVS_GOLDEN_DIR "/vectors/schedule.json");
  ASSERT_TRUE(in) << "cannot open schedule.json";
  nlohmann::json sidecar = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& [key, c] : sidecar["cases"].items()) {
    const std::string name = key.substr(0, key.rfind(".N"));
    auto from_json = SampleConfigFromJson(c["config"], name);
    ASSERT_TRUE(from_json.ok()) << key << ": " << from_json.status();
    auto named = NamedSampleConfig(name);
    ASSERT_TRUE(named.ok()) << named.status();
    EXPECT_EQ(*from_json, *named) << key;
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(SampleConfigTest, JsonErrorsNameTheField) {
  nlohmann::json j = {{"P", "1x2"},
                      {"step", 70},
                      {"ts", 24.0},
                      {"renorm", 2},
                      {"cfg", 20},
                      {"motion", 6.0},
                      {"negMotion", {2.0, {0.05, 6.0}}}};
  ASSERT_TRUE(SampleConfigFromJson(j, "x").ok());
  nlohmann::json missing = j;
  missing.erase("cfg");
  EXPECT_THAT(SampleConfigFromJson(missing, "x").status().message(),
              HasSubstr("\"cfg\": missing"));
  nlohmann::json bad = j;
  bad["P"] = {"1x2", {0.1}};
  EXPECT_THAT(SampleConfigFromJson(bad, "x").status().message(),
              HasSubstr("\"P\""));
}

}  // namespace
}  // namespace lvs::sampler
