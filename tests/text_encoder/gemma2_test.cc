// Gemma-2 encoder tests: one decoder layer against a plain float64
// reference and against the golden hidden states, the attention masks, the
// whole encoder in float32 and bfloat16 against the golden files, strict
// loading and input errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "model/io/checkpoint.h"
#include "model/io/state_dict.h"
#include "model/io/torch_tensors.h"
#include "model/text_encoder/gemma2_encoder.h"
#include "nlohmann/json.hpp"

namespace lvs::text_encoder {
namespace {

namespace fs = std::filesystem;

const std::string kGolden = LVS_GOLDEN_DIR;
const std::string kDir = kGolden + "/text_encoder";

Gemma2Config GoldenConfig() {
  auto config = Gemma2Config::FromFile(kDir + "/config.json");
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

io::TensorMap GoldenVectors(const std::string& stem) {
  auto t = io::LoadSafetensors(kGolden + "/vectors/" + stem + ".safetensors");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : io::TensorMap{};
}

// max |a - b| / max |ref|.
double MaxRel(const torch::Tensor& got, const torch::Tensor& ref) {
  torch::Tensor a = got.to(torch::kDouble), b = ref.to(torch::kDouble);
  return ((a - b).abs().max() / b.abs().max()).item<double>();
}

// The checkpoint tensors of decoder layer `n`, prefix stripped.
Gemma2DecoderLayer LoadLayer(const Gemma2Config& config, int n) {
  auto all = io::LoadCheckpoint(kDir);
  EXPECT_TRUE(all.ok()) << all.status();
  const std::string prefix = "model.layers." + std::to_string(n) + ".";
  io::TensorMap layer;
  for (const auto& [key, t] : *all) {
    if (key.rfind(prefix, 0) == 0) layer[key] = t;
  }
  Gemma2DecoderLayer module(config);
  io::StateDictOptions options;
  options.strip_prefix = prefix;
  absl::Status s = io::LoadStateDict(*module, layer, options, kDir);
  EXPECT_TRUE(s.ok()) << s;
  return module;
}

// A Gemma-2 decoder layer written out from the formulas in float64.
torch::Tensor ReferenceLayer(const Gemma2Config& c, Gemma2DecoderLayer& layer,
                             const torch::Tensor& x_in,
                             const torch::Tensor& pad_mask, bool sliding) {
  auto w = [](const torch::Tensor& t) { return t.detach().to(torch::kDouble); };
  auto norm = [&](const torch::Tensor& x, const torch::Tensor& weight) {
    return x * torch::rsqrt(x.pow(2).mean(-1, true) + c.rms_norm_eps) *
           (1 + w(weight));
  };
  const int64_t b = x_in.size(0), l = x_in.size(1), hq = c.num_attention_heads,
                hk = c.num_key_value_heads, d = c.head_dim;
  torch::Tensor x = x_in.to(torch::kDouble);
  auto& attn = *layer->self_attn;
  torch::Tensor h = norm(x, layer->input_layernorm->weight);
  torch::Tensor q = h.matmul(w(attn.q_proj->weight).t()).view({b, l, hq, d});
  torch::Tensor k = h.matmul(w(attn.k_proj->weight).t()).view({b, l, hk, d});
  torch::Tensor v = h.matmul(w(attn.v_proj->weight).t()).view({b, l, hk, d});
  // Rotate pairs (i, i + d/2) by p / theta^(2i/d).
  auto rope = [&](const torch::Tensor& t) {
    torch::Tensor out = t.clone();
    for (int64_t p = 0; p < l; ++p) {
      for (int64_t i = 0; i < d / 2; ++i) {
        const double a = p / std::pow(c.rope_theta, 2.0 * i / d);
        torch::Tensor x1 = t.select(1, p).select(-1, i);
        torch::Tensor x2 = t.select(1, p).select(-1, i + d / 2);
        out.select(1, p).select(-1, i).copy_(x1 * std::cos(a) -
                                             x2 * std::sin(a));
        out.select(1, p)
            .select(-1, i + d / 2)
            .copy_(x2 * std::cos(a) + x1 * std::sin(a));
      }
    }
    return out;
  };
  q = rope(q);
  k = rope(k).repeat_interleave(hq / hk, 2);  // [B, L, H, D]
  v = v.repeat_interleave(hq / hk, 2);
  torch::Tensor s = torch::einsum("bihd,bjhd->bhij", {q, k}) /
                    std::sqrt(c.query_pre_attn_scalar);
  s = *c.attn_logit_softcapping * torch::tanh(s / *c.attn_logit_softcapping);
  torch::Tensor allowed = torch::zeros({b, 1, l, l}, torch::kBool);
  for (int64_t r = 0; r < b; ++r) {
    for (int64_t i = 0; i < l; ++i) {
      for (int64_t j = 0; j <= i; ++j) {
        const bool in_window = !sliding || i - j < c.sliding_window;
        if (pad_mask[r][j].item<int64_t>() == 1 && in_window) {
          allowed[r][0][i][j] = true;
        }
      }
    }
  }
  // Rows with no visible key are uniform over every key.
  torch::Tensor any = allowed.any(-1, true);
  torch::Tensor p = torch::softmax(
      s.masked_fill(~allowed, -std::numeric_limits<double>::infinity())
          .masked_fill(~any, 0.0),
      -1);
  torch::Tensor o =
      torch::einsum("bhij,bjhd->bihd", {p, v}).reshape({b, l, hq * d});
  o = o.matmul(w(attn.o_proj->weight).t());
  x = x + norm(o, layer->post_attention_layernorm->weight);
  h = norm(x, layer->pre_feedforward_layernorm->weight);
  auto& mlp = *layer->mlp;
  torch::Tensor g = h.matmul(w(mlp.gate_proj->weight).t());
  g = 0.5 * g *
      (1 + torch::tanh(std::sqrt(2.0 / M_PI) * (g + 0.044715 * g.pow(3))));
  torch::Tensor f = (g * h.matmul(w(mlp.up_proj->weight).t()))
                        .matmul(w(mlp.down_proj->weight).t());
  return x + norm(f, layer->post_feedforward_layernorm->weight);
}

TEST(Gemma2LayerTest, MatchesPlainReferenceWithPaddingAndWindow) {
  const Gemma2Config config = GoldenConfig();
  torch::manual_seed(7);
  const int64_t l = 11;
  torch::Tensor x = torch::randn({2, l, config.hidden_size});
  torch::Tensor pad = torch::ones({2, l}, torch::kLong);
  pad[1].slice(0, 3).fill_(
      0);  // Row 1: 3 real tokens, later rows fully masked.
  const AttentionMasks masks =
      BuildAttentionMasks(pad, config.sliding_window, torch::kFloat);
  const RotaryTables rope =
      ComputeRotaryTables(config, l, torch::kFloat, torch::kCPU);
  for (int n : {0, 1}) {
    SCOPED_TRACE(n);
    Gemma2DecoderLayer layer = LoadLayer(config, n);
    const bool sliding = Gemma2Config::IsSlidingLayer(n);
    torch::NoGradGuard no_grad;
    torch::Tensor got = layer(x, rope, sliding ? masks.sliding : masks.full);
    torch::Tensor ref = ReferenceLayer(config, layer, x, pad, sliding);
    EXPECT_LT(MaxRel(got, ref), 1e-5);
  }
}

TEST(Gemma2LayerTest, FirstLayerMatchesGoldenHiddenStates) {
  const Gemma2Config config = GoldenConfig();
  io::TensorMap golden = GoldenVectors("text_encoder");
  const torch::Tensor hs = golden.at("batch.hidden_states");
  const torch::Tensor mask = golden.at("batch.attention_mask");
  Gemma2DecoderLayer layer = LoadLayer(config, 0);
  const AttentionMasks masks =
      BuildAttentionMasks(mask, config.sliding_window, torch::kFloat);
  const RotaryTables rope =
      ComputeRotaryTables(config, mask.size(1), torch::kFloat, torch::kCPU);
  torch::NoGradGuard no_grad;
  EXPECT_LT(MaxRel(layer(hs[0], rope, masks.sliding), hs[1]), 1e-5);
}

TEST(Gemma2MaskTest, CausalPaddingWindowAndFullyMaskedRows) {
  torch::Tensor pad =
      torch::tensor({1, 1, 1, 0, 0, 0}, torch::kLong).view({1, 6});
  const AttentionMasks m = BuildAttentionMasks(pad, 2, torch::kBFloat16);
  const float low =
      static_cast<float>(std::numeric_limits<c10::BFloat16>::lowest());
  EXPECT_EQ(m.full.scalar_type(), torch::kBFloat16);
  torch::Tensor full = m.full.to(torch::kFloat)[0][0];
  torch::Tensor win = m.sliding.to(torch::kFloat)[0][0];
  for (int i = 0; i < 6; ++i) {
    for (int j = 0; j < 6; ++j) {
      const bool visible = j <= i && j < 3;
      EXPECT_EQ(full[i][j].item<float>(), visible ? 0.0f : low)
          << i << "," << j;
      EXPECT_EQ(win[i][j].item<float>(), visible && i - j < 2 ? 0.0f : low)
          << i << "," << j;
    }
  }
  EXPECT_TRUE(win[4].eq(low).all().item<bool>());  // Fully masked row.
}

TEST(Gemma2EncoderTest, Float32MatchesEveryGoldenHiddenState) {
  io::TensorMap golden = GoldenVectors("text_encoder");
  TextEncoderOptions options;
  options.all_layers = true;
  auto full = Gemma2Encoder::Create(kDir, options);
  ASSERT_TRUE(full.ok()) << full.status();
  auto prod = Gemma2Encoder::Create(kDir);
  ASSERT_TRUE(prod.ok()) << prod.status();
  for (const std::string name : {"batch", "lumina_pair", "long"}) {
    SCOPED_TRACE(name);
    const torch::Tensor ids = golden.at(name + ".input_ids");
    const torch::Tensor mask = golden.at(name + ".attention_mask");
    auto states = (*full)->EncodeHiddenStates(ids, mask);
    ASSERT_TRUE(states.ok()) << states.status();
    auto embeds = (*prod)->EncodePromptEmbeds(ids, mask);
    ASSERT_TRUE(embeds.ok()) << embeds.status();
    ASSERT_EQ(states->size(), 4u);
    // The production path (last layer skipped) is hidden_states[-2] exactly.
    EXPECT_TRUE(embeds->equal((*states)[2]));
    if (golden.count(name + ".hidden_states")) {
      EXPECT_LT(
          MaxRel(torch::stack(*states), golden.at(name + ".hidden_states")),
          1e-4);
    } else {
      EXPECT_LT(MaxRel(*embeds, golden.at(name + ".prompt_embeds")), 1e-4);
    }
  }
}

TEST(Gemma2EncoderTest, BFloat16MatchesGoldenAtValidTokens) {
  io::TensorMap golden = GoldenVectors("text_encoder_bf16");
  TextEncoderOptions options;
  options.dtype = torch::kBFloat16;
  auto encoder = Gemma2Encoder::Create(kDir, options);
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  for (const std::string name : {"batch", "lumina_pair", "long"}) {
    SCOPED_TRACE(name);
    const torch::Tensor mask = golden.at(name + ".attention_mask");
    auto embeds =
        (*encoder)->EncodePromptEmbeds(golden.at(name + ".input_ids"), mask);
    ASSERT_TRUE(embeds.ok()) << embeds.status();
    EXPECT_EQ(embeds->scalar_type(), torch::kBFloat16);
    torch::Tensor valid = mask.to(torch::kBool);
    torch::Tensor got = embeds->to(torch::kDouble).index({valid});
    torch::Tensor ref =
        golden.at(name + ".prompt_embeds").to(torch::kDouble).index({valid});
    EXPECT_LT(((got - ref).norm() / ref.norm()).item<double>(), 0.03);
  }
}

// A copy of the golden text_encoder directory that a test may damage.
class DamagedCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(testing::TempDir()) /
           ("gemma2_" + std::to_string(::getpid()) + "_" +
            testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::copy(kDir, dir_, fs::copy_options::recursive);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void EditConfig(const std::string& field, const nlohmann::json& value) {
    std::ifstream in(dir_ / "config.json");
    nlohmann::json j = nlohmann::json::parse(in);
    j[field] = value;
    std::ofstream(dir_ / "config.json") << j.dump(2);
  }

  absl::Status Load(bool all_layers) {
    TextEncoderOptions options;
    options.all_layers = all_layers;
    return Gemma2Encoder::Create(dir_.string(), options).status();
  }

  fs::path dir_;
};

TEST_F(DamagedCheckpointTest, WrongModelTypeNamesConfig) {
  EditConfig("model_type", "llama");
  absl::Status s = Load(false);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find((dir_ / "config.json").string()),
            std::string::npos)
      << s;
  EXPECT_NE(s.message().find("model_type"), std::string::npos) << s;
}

TEST_F(DamagedCheckpointTest, MissingConfigAndShardAreNamed) {
  fs::remove(dir_ / "model-00002-of-00002.safetensors");
  absl::Status s = Load(false);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("model-00002-of-00002.safetensors"),
            std::string::npos)
      << s;
  fs::remove(dir_ / "config.json");
  s = Load(false);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(s.message().find("config.json"), std::string::npos) << s;
}

TEST_F(DamagedCheckpointTest, StrictLoadingListsExtraLayers) {
  EditConfig("num_hidden_layers", 2);
  for (bool all_layers : {false, true}) {
    absl::Status s = Load(all_layers);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("model.layers.2.mlp.up_proj.weight"),
              std::string::npos)
        << s;
  }
}

TEST_F(DamagedCheckpointTest, StrictLoadingListsMisshapedTensors) {
  EditConfig("intermediate_size", 64);
  absl::Status s = Load(false);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("model.layers.0.mlp.gate_proj.weight"),
            std::string::npos)
      << s;
}

TEST(Gemma2EncoderTest, RejectsBadInputs) {
  auto encoder = Gemma2Encoder::Create(kDir);
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  const auto& e = **encoder;
  torch::Tensor ids = torch::tensor({2, 5, 7}, torch::kLong).view({1, 3});
  torch::Tensor mask = torch::ones({1, 3}, torch::kLong);
  EXPECT_TRUE(e.EncodePromptEmbeds(ids, mask).ok());
  const auto bad = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(e.EncodePromptEmbeds(ids, torch::ones({1, 4}, torch::kLong))
                .status()
                .code(),
            bad);
  EXPECT_EQ(e.EncodePromptEmbeds(ids.to(torch::kFloat), mask).status().code(),
            bad);
  EXPECT_EQ(e.EncodePromptEmbeds(ids + 1000, mask).status().code(), bad);
  EXPECT_EQ(e.EncodePromptEmbeds(ids - 3, mask).status().code(), bad);
  EXPECT_EQ(e.EncodePromptEmbeds(ids, mask * 2).status().code(), bad);
  EXPECT_EQ(e.EncodePromptEmbeds(ids.view({3}), mask.view({3})).status().code(),
            bad);
  EXPECT_EQ(e.EncodeHiddenStates(ids, mask).status().code(),
            absl::StatusCode::kFailedPrecondition);
  TextEncoderOptions half;
  half.dtype = torch::kHalf;
  EXPECT_EQ(Gemma2Encoder::Create(kDir, half).status().code(), bad);
}

TEST(Gemma2ConfigTest, ValidatesFields) {
  nlohmann::json j = {{"model_type", "gemma2"},
                      {"vocab_size", 10},
                      {"hidden_size", 8},
                      {"intermediate_size", 16},
                      {"num_hidden_layers", 2},
                      {"num_attention_heads", 3},
                      {"num_key_value_heads", 2},
                      {"head_dim", 4},
                      {"attn_logit_softcapping", nullptr}};
  auto c = Gemma2Config::FromJson(j, "cfg.json");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("num_key_value_heads"),
            std::string::npos);
  j["num_attention_heads"] = 4;
  c = Gemma2Config::FromJson(j, "cfg.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->attn_logit_softcapping.has_value());
  EXPECT_EQ(c->query_pre_attn_scalar, 224.0);
  j.erase("hidden_size");
  EXPECT_NE(Gemma2Config::FromJson(j, "cfg.json")
                .status()
                .message()
                .find("hidden_size"),
            std::string::npos);
  j["hidden_size"] = 8;
  j["hidden_activation"] = "relu";
  EXPECT_FALSE(Gemma2Config::FromJson(j, "cfg.json").ok());
}

}  // namespace
}  // namespace lvs::text_encoder
