// DiTConfig from model_args fields: real names, explicit fields, defaults,
// errors.
#include "model/dit/dit_config.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "model/io/torch_pickle.h"
#include "tests/dit/dit_test_util.h"

namespace lvs::dit {
namespace {

TEST(DiTConfig, RealNameUsesArchitectureTable) {
  nlohmann::json args = {{"model", "MultiScaleNextDiT_2B_GQA"},
                         {"qk_norm", true},
                         {"patch_sizes", {2, 2, 4}},
                         {"f_patch_sizes", {1, 2, 2}},
                         {"rope_theta", 256.0},
                         {"t_scale", 1000.0},
                         {"motion_scale", 20.0},
                         {"lr", 1e-4}};
  absl::StatusOr<DiTConfig> c = DiTConfigFromArgs(args, "model_args.pth");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->dim, 2304);
  EXPECT_EQ(c->n_layers, 24);
  EXPECT_EQ(c->n_heads, 16);
  EXPECT_EQ(c->n_kv_heads, 8);
  EXPECT_EQ(c->head_dim(), 144);
  EXPECT_EQ(c->ffn_hidden_dim(), 6144);
  EXPECT_EQ(c->adaln_dim(), 1024);
  EXPECT_EQ(c->cap_feat_dim, 2304);
  EXPECT_EQ(c->rope_axes_dims(), (std::array<int64_t, 3>{36, 54, 54}));
  EXPECT_EQ(c->patch_keys(), (std::vector<std::string>{"2-1", "2-2", "4-2"}));
  EXPECT_TRUE(c->HasPatch(4, 2));
  EXPECT_FALSE(c->HasPatch(2, 4));
  EXPECT_EQ((PatchComb{2, 4}.ToString()), "2x4");
  EXPECT_TRUE(c->qk_norm);
  EXPECT_DOUBLE_EQ(c->t_scale, 1000.0);
}

TEST(DiTConfig, MissingConditioningFieldsDefault) {
  absl::StatusOr<DiTConfig> c =
      DiTConfigFromArgs({{"model", "MultiScaleNextDiT_2B_GQA"}}, "args");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->patch_keys(), (std::vector<std::string>{"2-2"}));
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(c->t_scale, 1.0);
  EXPECT_DOUBLE_EQ(c->motion_scale, 1.0);
  EXPECT_FALSE(c->qk_norm);
}

TEST(DiTConfig, ExplicitFieldsOfTestNames) {
  DiTConfig c = testing::GoldenConfig();
  EXPECT_EQ(c.model, "MultiScaleNextDiT_golden_tiny_a");
  nlohmann::json ref = testing::ReadGoldenJson("dit/config.json");
  EXPECT_EQ(c.dim, ref["dim"].get<int64_t>());
  EXPECT_EQ(c.head_dim(), ref["head_dim"].get<int64_t>());
  EXPECT_EQ(c.ffn_hidden_dim(), ref["ffn_hidden_dim"].get<int64_t>());
  EXPECT_EQ(c.adaln_dim(), ref["adaln_dim"].get<int64_t>());
  EXPECT_EQ(c.patch_keys(), ref["patch_keys"].get<std::vector<std::string>>());
  EXPECT_EQ(c.rope_axes_dims()[0], ref["rope_axes_dims"][0].get<int64_t>());
  EXPECT_EQ(c.rope_axes_dims()[1], ref["rope_axes_dims"][1].get<int64_t>());
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.cap_feat_dim, 48);
}

TEST(DiTConfig, FfnMultiplier) {
  nlohmann::json args = {{"model", "x"},      {"dim", 128},
                         {"n_layers", 1},     {"n_heads", 4},
                         {"multiple_of", 16}, {"ffn_dim_multiplier", 1.5},
                         {"cap_feat_dim", 8}};
  absl::StatusOr<DiTConfig> c = DiTConfigFromArgs(args, "args");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ffn_hidden_dim(), 512);  // int(1.5 * 341) = 511 -> 512.
  EXPECT_EQ(c->n_kv_heads, 4);          // Defaults to n_heads.
}

TEST(DiTConfig, ErrorsNameTheField) {
  auto fails_with = [](const nlohmann::json& args, const char* needle) {
    absl::StatusOr<DiTConfig> c =
        DiTConfigFromArgs(args, "ckpt/model_args.pth");
    ASSERT_FALSE(c.ok()) << needle;
    EXPECT_TRUE(absl::StrContains(c.status().message(), needle)) << c.status();
    EXPECT_TRUE(absl::StrContains(c.status().message(), "ckpt/model_args.pth"));
  };
  fails_with({{"lr", 1}}, "\"model\"");
  fails_with({{"model", "NextDiT_unknown"}}, "unknown architecture");
  fails_with({{"model", "MultiScaleNextDiT_2B_GQA"},
              {"patch_sizes", {2, 4}},
              {"f_patch_sizes", {1}}},
             "f_patch_sizes");
  fails_with({{"model", "MultiScaleNextDiT_2B_GQA"}, {"patch_sizes", "2"}},
             "patch_sizes");
  fails_with({{"model", "MultiScaleNextDiT_2B_GQA"}, {"n_heads", 7}},
             "n_heads");
  fails_with({{"model", "MultiScaleNextDiT_2B_GQA"}, {"qk_norm", 1}},
             "qk_norm");
  fails_with({{"model", "MultiScaleNextDiT_2B_GQA"},
              {"patch_sizes", {2, 2}},
              {"f_patch_sizes", {1, 1}}},
             "repeats");
}

// Both pickled forms of model_args (argparse.Namespace and
// types.SimpleNamespace) give the config of the plain-JSON copy.
TEST(DiTConfig, PickledModelArgsBothForms) {
  const std::string dir = testing::GoldenDir();
  absl::StatusOr<DiTConfig> ns = LoadDiTConfig(dir + "/dit");
  ASSERT_TRUE(ns.ok()) << ns.status();
  absl::StatusOr<nlohmann::json> simple =
      io::ReadPickledArgs(dir + "/extras/model_args_simplenamespace.pth");
  ASSERT_TRUE(simple.ok()) << simple.status();
  absl::StatusOr<DiTConfig> sn = DiTConfigFromArgs(*simple, "simplenamespace");
  ASSERT_TRUE(sn.ok()) << sn.status();
  const DiTConfig ref = testing::GoldenConfig();
  for (const DiTConfig* c : {&*ns, &*sn}) {
    EXPECT_EQ(c->model, ref.model);
    EXPECT_EQ(c->dim, ref.dim);
    EXPECT_EQ(c->n_layers, ref.n_layers);
    EXPECT_EQ(c->n_heads, ref.n_heads);
    EXPECT_EQ(c->n_kv_heads, ref.n_kv_heads);
    EXPECT_EQ(c->ffn_hidden_dim(), ref.ffn_hidden_dim());
    EXPECT_EQ(c->cap_feat_dim, ref.cap_feat_dim);
    EXPECT_EQ(c->patch_keys(), ref.patch_keys());
    EXPECT_EQ(c->qk_norm, ref.qk_norm);
    EXPECT_DOUBLE_EQ(c->norm_eps, ref.norm_eps);
    EXPECT_DOUBLE_EQ(c->rope_theta, ref.rope_theta);
    EXPECT_DOUBLE_EQ(c->t_scale, ref.t_scale);
    EXPECT_DOUBLE_EQ(c->motion_scale, ref.motion_scale);
  }
}

TEST(DiTConfig, MissingModelArgsNamesTheFile) {
  absl::StatusOr<DiTConfig> c = LoadDiTConfig("/nonexistent/ckpt");
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(absl::StrContains(c.status().message(),
                                "/nonexistent/ckpt/model_args.pth"))
      << c.status();
}

}  // namespace
}  // namespace lvs::dit
