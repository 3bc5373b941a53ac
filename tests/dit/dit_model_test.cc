// The whole DiT on the golden tiny checkpoint: forward against the golden
// vectors, list vs batched input, strict loading and input errors.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "model/dit/dit.h"
#include "tests/dit/dit_test_util.h"

namespace lvs::dit {
namespace {

using testing::GoldenConfig;
using testing::GoldenDir;
using testing::GoldenWeights;
using testing::MaxRelError;
using testing::RmsRelError;

class DiTGoldenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);
    vectors_ = new io::TensorMap(
        io::LoadSafetensors(GoldenDir() + "/vectors/dit_forward.safetensors")
            .value());
  }
  static void TearDownTestSuite() { delete vectors_; }

  static MultiScaleNextDiT Load(torch::ScalarType dtype,
                                AttentionOptions attention = {}) {
    DiTLoadOptions options;
    options.dtype = dtype;
    options.attention = attention;
    return BuildDiT(GoldenConfig(), GoldenWeights(), options, "golden dit")
        .value();
  }
  static const torch::Tensor& V(const std::string& name) {
    return vectors_->at(name);
  }
  static std::vector<torch::Tensor> ListX() {
    return {V("inputs.list.x.0"), V("inputs.list.x.1")};
  }

  static io::TensorMap* vectors_;
};
io::TensorMap* DiTGoldenTest::vectors_ = nullptr;

TEST_F(DiTGoldenTest, ListForwardMatchesGoldenFloat32) {
  // Small tiles so that the online softmax runs over several key tiles.
  AttentionOptions tiles;
  tiles.q_block = 7;
  tiles.k_block = 9;
  MultiScaleNextDiT model = Load(torch::kFloat32, tiles);
  for (const PatchComb& patch : model->config().patches) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> out = model->forward_list(
        ListX(), V("inputs.list.t"), V("inputs.list.cap_feats"),
        V("inputs.list.cap_mask"), V("inputs.list.motion_score"), patch.patch,
        patch.f_patch);
    ASSERT_EQ(out.size(), 2u);
    for (int i = 0; i < 2; ++i) {
      const torch::Tensor& ref =
          V(absl::StrCat("list.", patch.ToString(), ".out.", i));
      ASSERT_EQ(out[i].sizes(), ref.sizes());
      EXPECT_LT(MaxRelError(out[i], ref), 1e-5)
          << patch.ToString() << " item " << i;
    }
  }
}

TEST_F(DiTGoldenTest, BatchedForwardMatchesGoldenAndList) {
  MultiScaleNextDiT model = Load(torch::kFloat32);
  torch::NoGradGuard no_grad;
  const torch::Tensor& x = V("inputs.tensor.x");
  for (const PatchComb& patch : model->config().patches) {
    torch::Tensor out = model->forward(
        x, V("inputs.tensor.t"), V("inputs.tensor.cap_feats"),
        V("inputs.tensor.cap_mask"), V("inputs.tensor.motion_score"),
        patch.patch, patch.f_patch);
    const std::string name = absl::StrCat("tensor.", patch.ToString(), ".out");
    if (vectors_->count(name)) {
      EXPECT_LT(MaxRelError(out, V(name)), 1e-5) << name;
    }
    // Rows through the list path give the same bits.
    std::vector<torch::Tensor> list = model->forward_list(
        x.unbind(0), V("inputs.tensor.t"), V("inputs.tensor.cap_feats"),
        V("inputs.tensor.cap_mask"), V("inputs.tensor.motion_score"),
        patch.patch, patch.f_patch);
    EXPECT_TRUE(torch::equal(out, torch::stack(list))) << patch.ToString();
  }
}

TEST_F(DiTGoldenTest, Bf16ForwardIsCloseToGoldenBf16) {
  io::TensorMap bf =
      io::LoadSafetensors(GoldenDir() + "/vectors/dit_forward_bf16.safetensors")
          .value();
  MultiScaleNextDiT model = Load(torch::kBFloat16);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out = model->forward_list(
      {bf.at("inputs.list.x.0"), bf.at("inputs.list.x.1")},
      bf.at("inputs.list.t"), bf.at("inputs.list.cap_feats"),
      bf.at("inputs.list.cap_mask"), bf.at("inputs.list.motion_score"), 2, 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(out[i].scalar_type(), torch::kBFloat16);
    EXPECT_LT(RmsRelError(out[i], bf.at(absl::StrCat("list.2x2.out.", i))),
              0.03)
        << i;
  }
}

TEST_F(DiTGoldenTest, ItemsDoNotSeeEachOther) {
  MultiScaleNextDiT model = Load(torch::kFloat32);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> x = ListX();
  std::vector<torch::Tensor> both = model->forward_list(
      x, V("inputs.list.t"), V("inputs.list.cap_feats"),
      V("inputs.list.cap_mask"), V("inputs.list.motion_score"), 2, 2);
  auto row = [](const torch::Tensor& v) { return v.narrow(0, 1, 1); };
  std::vector<torch::Tensor> alone = model->forward_list(
      {x[1]}, row(V("inputs.list.t")), row(V("inputs.list.cap_feats")),
      row(V("inputs.list.cap_mask")), row(V("inputs.list.motion_score")), 2, 2);
  EXPECT_LT(MaxRelError(alone[0], both[1]), 1e-6);
}

TEST_F(DiTGoldenTest, BadInputsGiveClearErrors) {
  MultiScaleNextDiT model = Load(torch::kFloat32);
  torch::NoGradGuard no_grad;
  const torch::Tensor x = V("inputs.tensor.x");  // [2, 16, 4, 8, 16]
  const torch::Tensor t = V("inputs.tensor.t"),
                      cap = V("inputs.tensor.cap_feats");
  const torch::Tensor mask = V("inputs.tensor.cap_mask"),
                      m = V("inputs.tensor.motion_score");
  auto expect_error = [&](const absl::StatusOr<torch::Tensor>& r,
                          const char* needle) {
    ASSERT_FALSE(r.ok()) << needle;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(r.status().message(), needle)) << r.status();
  };
  expect_error(model->Forward(x, t, cap, mask, m, 4, 1), "4-1");
  expect_error(model->Forward(x.narrow(3, 0, 6), t, cap, mask, m, 4, 2),
               "patch size 4");
  expect_error(model->Forward(x.narrow(2, 0, 3), t, cap, mask, m, 2, 2),
               "3 frames");
  expect_error(model->Forward(x, t, cap.narrow(2, 0, 40), mask, m, 2, 1),
               "caption dim 48");
  expect_error(model->Forward(x, t.narrow(0, 0, 1), cap, mask, m, 2, 1),
               "t must");
  expect_error(model->Forward(x, t, cap, torch::zeros_like(mask), m, 2, 1),
               "no valid caption");
  expect_error(model->Forward(torch::zeros({1, 16, 1, 8, 8 * 129}),
                              t.narrow(0, 0, 1), cap.narrow(0, 0, 1),
                              mask.narrow(0, 0, 1), m.narrow(0, 0, 1), 4, 2),
               "RoPE limit");
  EXPECT_THROW(model->forward(x, t, cap, mask, m, 4, 1), c10::Error);
}

TEST(DiTLoad, StrictLoadingNamesEveryProblem) {
  io::TensorMap w = GoldenWeights();
  w.erase("layers.1.attention.gate");
  w["layers.0.extra.weight"] = torch::zeros({2});
  w["cap_embedder.0.weight"] = torch::zeros({47});
  auto r = BuildDiT(GoldenConfig(), w, {}, "golden dit");
  ASSERT_FALSE(r.ok());
  const std::string msg(r.status().message());
  EXPECT_TRUE(absl::StrContains(msg, "layers.1.attention.gate")) << msg;
  EXPECT_TRUE(absl::StrContains(msg, "layers.0.extra.weight")) << msg;
  EXPECT_TRUE(absl::StrContains(msg, "cap_embedder.0.weight")) << msg;
}

TEST(DiTLoad, ConfigMismatchNamesTheField) {
  DiTConfig c = GoldenConfig();
  c.n_layers = 3;
  auto r = BuildDiT(c, GoldenWeights(), {}, "golden dit");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "n_layers"))
      << r.status();
}

TEST(DiTLoad, StripsCompileWrapperAndConvertsDtype) {
  io::TensorMap w;
  for (const auto& [k, v] : GoldenWeights())
    w[absl::StrCat("_orig_mod.", k)] = v;
  DiTLoadOptions options;
  options.dtype = torch::kBFloat16;
  auto r = BuildDiT(GoldenConfig(), w, options, "golden dit");
  ASSERT_TRUE(r.ok()) << r.status();
  for (const torch::Tensor& p : (*r)->parameters()) {
    EXPECT_EQ(p.scalar_type(), torch::kBFloat16);
    EXPECT_FALSE(p.requires_grad());
  }
  EXPECT_EQ((*r)->named_parameters().size(), GoldenWeights().size());
}

// A checkpoint directory made of symlinks to golden files.
std::string LinkedCheckpoint(const std::string& name, const std::string& args,
                             const std::string& weights,
                             const std::string& weights_as) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(LVS_BINARY_DIR) / "tests" / "dit" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::create_symlink(GoldenDir() + "/" + args, dir / "model_args.pth");
  fs::create_symlink(GoldenDir() + "/" + weights, dir / weights_as);
  return dir.string();
}

TEST(DiTLoad, PthCheckpointsLoadTheSameWeights) {
  const io::TensorMap ref = GoldenWeights();
  auto check = [&](const std::string& dir, torch::ScalarType dtype) {
    DiTLoadOptions options;
    options.dtype = dtype;
    absl::StatusOr<MultiScaleNextDiT> model = LoadDiT(dir, options);
    ASSERT_TRUE(model.ok()) << model.status();
    for (const auto& item : (*model)->named_parameters()) {
      EXPECT_TRUE(torch::equal(item.value(), ref.at(item.key()).to(dtype)))
          << item.key();
    }
  };
  check(GoldenDir() + "/dit", torch::kFloat32);
  check(LinkedCheckpoint("pth_fp32", "extras/model_args_simplenamespace.pth",
                         "extras/consolidated.00-of-01.pth",
                         "consolidated.00-of-01.pth"),
        torch::kFloat32);
  check(LinkedCheckpoint("pth_bf16_views", "dit/model_args.pth",
                         "extras/consolidated_bf16_views.00-of-01.pth",
                         "consolidated.00-of-01.pth"),
        torch::kBFloat16);
}

TEST(DiTLoad, MissingWeightsNameTheDirectory) {
  const std::string dir = LinkedCheckpoint("no_weights", "dit/model_args.pth",
                                           "dit/config.json", "config.json");
  absl::StatusOr<MultiScaleNextDiT> model = LoadDiT(dir);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(
      absl::StrContains(model.status().message(), "consolidated.00-of-01"))
      << model.status();
}

}  // namespace
}  // namespace lvs::dit
