// Strict state-dict binding: exact matches load (with `_orig_mod.` /
// `module.` stripped and dtypes converted); every missing, unexpected and
// mis-shaped tensor is listed in one error and the module stays unchanged;
// every golden checkpoint directory binds strictly to a module of its shapes.
#include "model/io/state_dict.h"

#include <string>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/io/checkpoint.h"
#include "tests/io/test_util.h"

namespace lvs::io {
namespace {

using ::testing::HasSubstr;

// linear {weight [3,4], bias [3]}, blocks.0.norm {weight [4]}, buffer
// `steps` (int64 [1]).
struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    linear = register_module("linear", torch::nn::Linear(4, 3));
    blocks = register_module("blocks", torch::nn::ModuleList());
    auto block = std::make_shared<torch::nn::Module>();
    block->register_module(
        "norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({4})));
    blocks->push_back(block);
    steps = register_buffer("steps", torch::zeros({1}, torch::kInt64));
  }
  torch::nn::Linear linear{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::Tensor steps;
};

TensorMap TinyCheckpoint(torch::ScalarType type = torch::kFloat32) {
  return {{"linear.weight", torch::arange(12, type).reshape({3, 4})},
          {"linear.bias", torch::arange(3, type)},
          {"blocks.0.norm.weight", torch::full({4}, 2.0, type)},
          {"blocks.0.norm.bias", torch::full({4}, -1.0, type)},
          {"steps", torch::tensor({7}, torch::kInt64)}};
}

TEST(StateDict, ExactMatchLoadsValues) {
  TinyImpl m;
  ASSERT_TRUE(LoadStateDict(m, TinyCheckpoint(), {}, "tiny").ok());
  EXPECT_TRUE(torch::equal(m.linear->weight,
                           torch::arange(12, torch::kFloat32).reshape({3, 4})));
  EXPECT_EQ(m.named_buffers()["steps"].item<int64_t>(), 7);
}

TEST(StateDict, WrapperSegmentsAreStripped) {
  EXPECT_EQ(CanonicalKey("_orig_mod.layers.0.w"), "layers.0.w");
  EXPECT_EQ(CanonicalKey("module._orig_mod.x"), "x");
  EXPECT_EQ(CanonicalKey("a.module_b.c"), "a.module_b.c");
  TensorMap ckpt;
  for (auto& [k, v] : TinyCheckpoint()) ckpt["_orig_mod." + k] = v;
  TinyImpl m;
  ASSERT_TRUE(LoadStateDict(m, ckpt, {}, "compiled").ok());
  EXPECT_EQ(m.linear->bias[2].item<float>(), 2.0f);
  TensorMap clash = {{"x", torch::zeros({1})},
                     {"_orig_mod.x", torch::zeros({1})}};
  EXPECT_THAT(std::string(CanonicalizeKeys(clash, "c.pth").status().message()),
              HasSubstr("c.pth: two tensors map to \"x\""));
}

TEST(StateDict, StrictErrorListsEveryProblemAndLeavesModuleUnchanged) {
  TensorMap ckpt = TinyCheckpoint();
  ckpt.erase("linear.bias");
  ckpt.erase("blocks.0.norm.bias");
  ckpt["extra.a"] = torch::zeros({1});
  ckpt["extra.b"] = torch::zeros({1});
  ckpt["linear.weight"] = torch::zeros({4, 3});
  TinyImpl m;
  const torch::Tensor before = m.linear->weight.clone();
  absl::Status s = LoadStateDict(m, ckpt, {}, "/ckpt/bad.safetensors");
  ASSERT_FALSE(s.ok());
  const std::string msg(s.message());
  EXPECT_THAT(msg, HasSubstr("/ckpt/bad.safetensors"));
  EXPECT_THAT(msg, HasSubstr("2 missing, 2 unexpected, 1 mis-shaped"));
  for (const char* key :
       {"linear.bias", "blocks.0.norm.bias", "extra.a", "extra.b",
        "linear.weight: checkpoint [4,3], model "
        "[3,4]"}) {
    EXPECT_THAT(msg, HasSubstr(key));
  }
  EXPECT_TRUE(torch::equal(m.linear->weight, before));
}

TEST(StateDict, DtypeConversionOnLoad) {
  // F16 checkpoint into an F32 module keeps the module's dtype.
  TinyImpl a;
  ASSERT_TRUE(LoadStateDict(a, TinyCheckpoint(torch::kFloat16), {}, "h").ok());
  EXPECT_EQ(a.linear->weight.scalar_type(), torch::kFloat32);
  EXPECT_EQ(a.linear->weight[2][3].item<float>(), 11.0f);
  // An explicit run dtype converts floating tensors only.
  TinyImpl b;
  StateDictOptions opts;
  opts.dtype = torch::kBFloat16;
  ASSERT_TRUE(LoadStateDict(b, TinyCheckpoint(), opts, "f").ok());
  EXPECT_EQ(b.linear->weight.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(b.named_buffers()["steps"].scalar_type(), torch::kInt64);
}

TEST(StateDict, PrefixStrippingAndIgnoredPrefixes) {
  TensorMap ckpt;
  for (auto& [k, v] : TinyCheckpoint()) ckpt["model." + k] = v;
  ckpt["lm_head.weight"] = torch::zeros({2});
  TinyImpl m;
  StateDictOptions opts;
  opts.strip_prefix = "model.";
  EXPECT_THAT(std::string(LoadStateDict(m, ckpt, opts, "p").message()),
              HasSubstr("unexpected: lm_head.weight"));
  opts.ignored_prefixes = {"lm_head."};
  EXPECT_TRUE(LoadStateDict(m, ckpt, opts, "p").ok());
}

// A module holding one parameter per tensor of `shapes`, nested by the
// dotted names, as the real model classes are.
std::shared_ptr<torch::nn::Module> ModuleOfShapes(const TensorMap& shapes) {
  auto root = std::make_shared<torch::nn::Module>();
  for (const auto& [name, t] : shapes) {
    std::vector<std::string> parts = absl::StrSplit(name, '.');
    std::shared_ptr<torch::nn::Module> m = root;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      auto children = m->named_children();
      m = children.contains(parts[i])
              ? children[parts[i]]
              : m->register_module(parts[i],
                                   std::make_shared<torch::nn::Module>());
    }
    m->register_parameter(parts.back(),
                          torch::zeros(t.sizes(), torch::kFloat32));
  }
  return root;
}

TEST(StateDict, GoldenCheckpointDirectoriesBindStrictly) {
  const std::string g = testing::GoldenDir();
  for (const char* dir : {"/dit", "/text_encoder", "/vae"}) {
    absl::StatusOr<TensorMap> t = LoadCheckpoint(g + dir);
    ASSERT_TRUE(t.ok()) << t.status();
    auto m = ModuleOfShapes(*t);
    ASSERT_TRUE(LoadStateDict(*m, *t, {}, g + dir).ok()) << dir;
  }
  // The three DiT forms bind to the same module; bf16 widens exactly.
  TensorMap dit = *LoadCheckpoint(g + "/dit");
  for (const char* form : {"/extras/consolidated.00-of-01.pth",
                           "/extras/consolidated_bf16_views.00-of-01.pth"}) {
    auto m = ModuleOfShapes(dit);
    absl::StatusOr<TensorMap> t = LoadCheckpoint(g + form);
    ASSERT_TRUE(t.ok()) << t.status();
    absl::Status s = LoadStateDict(*m, *t, {}, g + form);
    ASSERT_TRUE(s.ok()) << s;
    for (const auto& p : m->named_parameters()) {
      EXPECT_TRUE(
          torch::equal(p.value(), dit.at(p.key())
                                      .to(t->begin()->second.scalar_type())
                                      .to(torch::kFloat32)))
          << form << " " << p.key();
    }
  }
}

}  // namespace
}  // namespace lvs::io
