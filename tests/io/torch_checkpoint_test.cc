// torch.save archives: the golden .pth fixtures load to exactly the values
// of the DiT safetensors checkpoint; both model_args pickles parse to the
// same fields.
#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/io/checkpoint.h"
#include "model/io/state_dict.h"
#include "model/io/torch_pickle.h"
#include "tests/io/test_util.h"

namespace lvs::io {
namespace {

using testing::GoldenDir;

TensorMap GoldenDiT() {
  absl::StatusOr<TensorMap> t =
      LoadSafetensors(GoldenDir() + "/dit/consolidated.00-of-01.safetensors");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : TensorMap();
}

TEST(TorchCheckpoint, Fp32PthEqualsSafetensorsExactly) {
  const std::string path = GoldenDir() + "/extras/consolidated.00-of-01.pth";
  absl::StatusOr<TensorMap> pth = LoadCheckpoint(path);
  ASSERT_TRUE(pth.ok()) << pth.status();
  TensorMap golden = GoldenDiT();
  ASSERT_EQ(pth->size(), golden.size());
  EXPECT_EQ(pth->size(), 77u);
  for (const auto& [name, want] : golden) {
    ASSERT_TRUE(pth->count(name)) << name;
    const torch::Tensor& got = pth->at(name);
    EXPECT_EQ(got.scalar_type(), torch::kFloat32) << name;
    EXPECT_TRUE(torch::equal(got, want)) << name;
  }
}

TEST(TorchCheckpoint, Bf16ViewsEqualRoundedSafetensorsExactly) {
  const std::string path =
      GoldenDir() + "/extras/consolidated_bf16_views.00-of-01.pth";
  absl::StatusOr<TensorMap> raw = LoadTorchCheckpoint(path);
  ASSERT_TRUE(raw.ok()) << raw.status();
  for (const auto& [name, t] : *raw) {
    EXPECT_EQ(name.rfind("_orig_mod.", 0), 0u) << name;
  }
  absl::StatusOr<TensorMap> pth = CanonicalizeKeys(*raw, path);
  ASSERT_TRUE(pth.ok()) << pth.status();
  TensorMap golden = GoldenDiT();
  ASSERT_EQ(pth->size(), golden.size());
  int non_contiguous = 0;
  std::set<const void*> storages;
  for (const auto& [name, want] : golden) {
    ASSERT_TRUE(pth->count(name)) << name;
    const torch::Tensor& got = pth->at(name);
    EXPECT_EQ(got.scalar_type(), torch::kBFloat16) << name;
    EXPECT_EQ(got.sizes(), want.sizes()) << name;
    EXPECT_TRUE(torch::equal(got, want.to(torch::kBFloat16))) << name;
    non_contiguous += got.is_contiguous() ? 0 : 1;
    storages.insert(got.storage().data());
  }
  // The fixture stores transposed views and shares storages (README 3.1).
  EXPECT_GT(non_contiguous, 0);
  EXPECT_LT(storages.size(), golden.size());
}

TEST(TorchCheckpoint, ArchiveSpecsDescribeSharedStorages) {
  absl::StatusOr<TorchArchive> a = OpenTorchArchive(
      GoldenDir() + "/extras/consolidated_bf16_views.00-of-01.pth");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->prefix, "consolidated_bf16_views.00-of-01/");
  EXPECT_EQ(a->tensors.size(), 77u);
  EXPECT_LT(a->storages.size(), a->tensors.size());
  bool offset = false;
  for (const TensorSpec& t : a->tensors) {
    EXPECT_EQ(t.dtype, DType::kBF16);
    offset |= t.storage_offset > 0;
  }
  EXPECT_TRUE(offset);
}

TEST(TorchCheckpoint, ModelArgsNamespaceAndSimpleNamespaceAgree) {
  absl::StatusOr<nlohmann::json> ns =
      ReadPickledArgs(GoldenDir() + "/dit/model_args.pth");
  ASSERT_TRUE(ns.ok()) << ns.status();
  absl::StatusOr<nlohmann::json> sns =
      ReadPickledArgs(GoldenDir() + "/extras/model_args_simplenamespace.pth");
  ASSERT_TRUE(sns.ok()) << sns.status();
  EXPECT_EQ(*ns, *sns);
  ASSERT_TRUE(ns->is_object());
  for (const char* field : {"cache_data_on_disk",
                            "results_dir",
                            "use_wandb",
                            "model",
                            "patch_sizes",
                            "f_patch_sizes",
                            "max_steps",
                            "global_seed",
                            "lr",
                            "qk_norm",
                            "rope_theta",
                            "t_scale",
                            "motion_scale",
                            "task_config",
                            "dim",
                            "n_layers",
                            "n_heads",
                            "n_kv_heads",
                            "multiple_of",
                            "ffn_dim_multiplier",
                            "norm_eps",
                            "in_channels",
                            "cap_feat_dim"}) {
    EXPECT_TRUE(ns->contains(field)) << field;
  }
  // Values agree with the plain-JSON config written beside the checkpoint.
  nlohmann::json config = nlohmann::json::parse(
      testing::ReadFile(GoldenDir() + "/dit/config.json"));
  for (const char* field : {"dim", "n_layers", "n_heads", "n_kv_heads",
                            "multiple_of", "in_channels", "cap_feat_dim"}) {
    if (config.contains(field)) {
      EXPECT_EQ((*ns)[field], config[field]) << field;
    }
  }
  EXPECT_TRUE((*ns)["patch_sizes"].is_array());
  EXPECT_TRUE((*ns)["model"].is_string());
  EXPECT_TRUE((*ns)["qk_norm"].is_boolean());
  EXPECT_TRUE((*ns)["rope_theta"].is_number());
}

}  // namespace
}  // namespace lvs::io
