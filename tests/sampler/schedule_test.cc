// Time grid and per-call resolution: exact float32 grid values and resolved
// values against the golden schedule sidecar, the N = 70 call counts of
// golden README 4.6 and the bfloat16 threshold edge case.
#include "model/sampler/schedule.h"

#include <fstream>
#include <map>
#include <tuple>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace lvs::sampler {
namespace {

// Counts calls per (patch, guided) for config `name` with N = 70.
std::map<std::pair<std::string, bool>, int> CountCalls(const std::string& name,
                                                       TimePrecision p) {
  auto config = NamedSampleConfig(name);
  EXPECT_TRUE(config.ok());
  auto calls = PlanModelCalls(*config, 70, p);
  EXPECT_TRUE(calls.ok());
  std::map<std::pair<std::string, bool>, int> counts;
  for (const ModelCall& c : *calls) ++counts[{c.patch.ToString(), c.guided()}];
  return counts;
}

TEST(ScheduleTest, SeventyStepCountsMatchTheReference) {
  using Counts = std::map<std::pair<std::string, bool>, int>;
  for (TimePrecision p : {TimePrecision::kFloat32, TimePrecision::kBFloat16}) {
    EXPECT_EQ(CountCalls("f24F96R960", p),
              (Counts{{{"1x2", true}, 60}, {{"1x2", false}, 9}}));
    EXPECT_EQ(CountCalls("f24F96R960-MultiScale", p),
              (Counts{{{"2x4", true}, 30},
                      {{"2x2", true}, 24},
                      {{"1x2", true}, 6},
                      {{"1x2", false}, 9}}));
    EXPECT_EQ(CountCalls("f16F64R512", p),
              (Counts{{{"1x2", true}, 59}, {{"1x2", false}, 10}}));
    EXPECT_EQ(CountCalls("f16F64R512-MultiScale", p),
              (Counts{{{"2x4", true}, 28},
                      {{"2x2", true}, 26},
                      {{"1x2", true}, 5},
                      {{"1x2", false}, 10}}));
  }
}

TEST(ScheduleTest, SeventyStepGridDetails) {
  auto config = NamedSampleConfig("f24F96R960");
  ASSERT_TRUE(config.ok());
  auto calls = PlanModelCalls(*config, 70, TimePrecision::kBFloat16);
  ASSERT_TRUE(calls.ok());
  ASSERT_EQ(calls->size(), 69u);
  // Negative motion switches to 6 at step 39 (reference brief B.1).
  EXPECT_EQ((*calls)[38].motion_neg, 2.0);
  EXPECT_EQ((*calls)[39].motion_neg, 6.0);
  // Last call: t = 0.739130 in float32, 0.738281 in bfloat16 (README 6).
  EXPECT_NEAR((*calls)[68].t_grid, 0.739130, 1e-6);
  EXPECT_EQ((*calls)[68].t_model, 0.73828125f);
  EXPECT_FLOAT_EQ((*calls)[68].dt, 1.0f - (*calls)[68].t_grid);
}

TEST(ScheduleTest, Bf16EdgeCaseOfEightSteps) {
  auto config = NamedSampleConfig("f24F96R960");
  ASSERT_TRUE(config.ok());
  auto f32 = PlanModelCalls(*config, 8, TimePrecision::kFloat32);
  auto bf16 = PlanModelCalls(*config, 8, TimePrecision::kBFloat16);
  ASSERT_TRUE(f32.ok() && bf16.ok());
  ASSERT_EQ(f32->size(), 7u);
  EXPECT_LT((*f32)[6].t_model, 0.2f);
  EXPECT_TRUE((*f32)[6].guided());  // 0.19999996 < 0.2
  EXPECT_EQ((*bf16)[6].t_model, 0.2001953125f);
  EXPECT_FALSE((*bf16)[6].guided());  // 0.2002 >= 0.2
}

TEST(ScheduleTest, RoundTimeIsRoundToNearestEven) {
  EXPECT_EQ(RoundTime(1.0f, TimePrecision::kBFloat16), 1.0f);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1).
  EXPECT_EQ(RoundTime(1.00390625f, TimePrecision::kBFloat16), 1.0f);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even.
  EXPECT_EQ(RoundTime(1.01171875f, TimePrecision::kBFloat16), 1.015625f);
  EXPECT_EQ(RoundTime(0.19999996f, TimePrecision::kFloat32), 0.19999996f);
}

TEST(ScheduleTest, BadArguments) {
  EXPECT_FALSE(ShiftedTimeGrid(1, 24).ok());
  EXPECT_FALSE(ShiftedTimeGrid(10, 0).ok());
  auto grid = ShiftedTimeGrid(2, 24);
  ASSERT_TRUE(grid.ok());
  EXPECT_EQ(*grid, (std::vector<float>{0.0f, 1.0f}));
}

// Every case of the golden schedule sidecar: grid times bit-exact and every
// resolved value equal, for float32 and bfloat16 model times.
TEST(ScheduleTest, MatchesGoldenSidecar) {
  std::ifstream in(LVS_GOLDEN_DIR "/vectors/schedule.json");
  ASSERT_TRUE(in);
  const nlohmann::json sidecar = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& [key, c] : sidecar["cases"].items()) {
    auto config = SampleConfigFromJson(c["config"], key);
    ASSERT_TRUE(config.ok()) << config.status();
    const int n = c["num_steps"].get<int>();
    for (auto [field, p] :
         {std::make_tuple("schedule_fp32", TimePrecision::kFloat32),
          std::make_tuple("schedule_bf16", TimePrecision::kBFloat16)}) {
      auto calls = PlanModelCalls(*config, n, p);
      ASSERT_TRUE(calls.ok());
      const auto& ref = c[field];
      ASSERT_EQ(calls->size(), ref.size()) << key;
      for (size_t i = 0; i < ref.size(); ++i) {
        const ModelCall& got = (*calls)[i];
        const std::string where = absl::StrCat(key, " ", field, " call ", i);
        EXPECT_EQ(got.t_model, ref[i]["t"].get<float>()) << where;
        EXPECT_EQ(got.patch.ToString(), ref[i]["patch_comb"].get<std::string>())
            << where;
        EXPECT_EQ(got.cfg, ref[i]["cfg_scale"].get<double>()) << where;
        EXPECT_EQ(got.motion_pos, ref[i]["motion_pos"].get<double>()) << where;
        EXPECT_EQ(got.motion_neg, ref[i]["motion_neg"].get<double>()) << where;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 100);
}

}  // namespace
}  // namespace lvs::sampler
