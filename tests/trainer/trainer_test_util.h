// Shared fixtures of the trainer tests: a tiny DiT checkpoint and synthetic
// cached-latent datasets written the way lvs-extract writes them.
//
// Thread-safety: test-only helpers; not thread-safe.
#ifndef LVS_TESTS_TRAINER_TRAINER_TEST_UTIL_H_
#define LVS_TESTS_TRAINER_TRAINER_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "model/dit/dit.h"
#include "model/io/torch_tensors.h"
#include "nlohmann/json.hpp"
#include "trainer/checkpoint.h"
#include "trainer/model_args_writer.h"
#include "trainer/train_spec.h"

namespace lvs::trainer::testing {

// model_args of a tiny DiT (2 layers, width 64, patches 2-1, 2-2, 4-2).
inline nlohmann::json TinyModelArgs() {
  return {{"model", "MultiScaleNextDiT_test_tiny"},
          {"dim", 64},
          {"n_layers", 2},
          {"n_heads", 4},
          {"n_kv_heads", 2},
          {"multiple_of", 16},
          {"norm_eps", 1e-5},
          {"in_channels", 16},
          {"cap_feat_dim", 32},
          {"qk_norm", true},
          {"patch_sizes", {2, 2, 4}},
          {"f_patch_sizes", {1, 2, 2}},
          {"rope_theta", 256.0},
          {"t_scale", 1000.0},
          {"motion_scale", 20.0}};
}

// Writes a freshly initialised (seeded) tiny DiT checkpoint into `dir`.
inline void WriteTinyCheckpoint(const std::string& dir, uint64_t seed = 1) {
  std::filesystem::create_directories(dir);
  dit::DiTConfig config =
      dit::DiTConfigFromArgs(TinyModelArgs(), "tiny").value();
  torch::manual_seed(seed);
  dit::MultiScaleNextDiT model(config);
  io::TensorMap weights;
  for (const auto& p : model->named_parameters()) weights[p.key()] = p.value();
  ASSERT_TRUE(io::SaveSafetensors(dir + "/" + kModelFile, weights).ok());
  ASSERT_TRUE(WriteModelArgs(dir + "/" + kModelArgsFile, TinyModelArgs()).ok());
}

// Writes `n` synthetic items (latents [16, frames, h, w] in bf16 with a
// smooth per-item pattern, caption features [4 + i % 3, 32]) into one
// shard, their records into `dir/records.jsonl` and the system prompt's
// features; returns the record file.
inline std::string WriteSyntheticLatents(const std::string& dir, int n,
                                         int64_t frames, int64_t h, int64_t w,
                                         uint64_t seed = 7) {
  std::filesystem::create_directories(dir);
  torch::manual_seed(seed);
  io::TensorMap shard;
  std::ofstream rec(dir + "/records.jsonl");
  for (int i = 0; i < n; ++i) {
    // A few low-frequency components so the data has learnable structure.
    torch::Tensor base = torch::randn({16, 1, 1, 1});
    torch::Tensor ramp = torch::linspace(-1, 1, w).view({1, 1, 1, w});
    torch::Tensor framep =
        torch::linspace(0, 1, frames).view({1, frames, 1, 1});
    torch::Tensor latent =
        (base + 0.5 * ramp * torch::randn({16, 1, 1, 1}) + 0.3 * framep)
            .expand({16, frames, h, w})
            .contiguous();
    shard[absl::StrCat("item", i, ".latent")] = latent.to(torch::kBFloat16);
    shard[absl::StrCat("item", i, ".cap")] = torch::randn({4 + i % 3, 32});
    nlohmann::json r = {{"path", absl::StrCat("clip", i, ".mp4")},
                        {"prompt", absl::StrCat("prompt ", i)},
                        {"shard", "shard-00000.safetensors"},
                        {"key", absl::StrCat("item", i, ".latent")},
                        {"cap_key", absl::StrCat("item", i, ".cap")},
                        {"shape", {16, frames, h, w}},
                        {"unimatch_flow", 1.5 + i}};
    rec << r.dump() << "\n";
  }
  EXPECT_TRUE(
      io::SaveSafetensors(dir + "/shard-00000.safetensors", shard).ok());
  EXPECT_TRUE(io::SaveSafetensors(dir + "/system_prompt.safetensors",
                                  {{"cap_feats", torch::randn({3, 32})}})
                  .ok());
  return dir + "/records.jsonl";
}

// A spec fine-tuning the tiny checkpoint in `init` on `records` with one
// video task "V-FP2" (global batch 4, micro-batch 2, 8 frames, patch 2x2,
// shift 2), lr 2e-3, seed 11, EMA every 2 steps.
inline TrainSpec TinyVideoSpec(const std::string& init,
                               const std::string& records, int64_t steps) {
  TrainSpec spec;
  spec.init_from = init;
  spec.learning_rate = 2e-3;
  spec.max_steps = steps;
  spec.seed = 11;
  spec.ema_interval = 2;
  TaskSpec video;
  video.name = "V-FP2";
  video.records = {records};
  video.global_batch_size = 4;
  video.micro_batch_size = 2;
  video.max_frames = 8;
  video.patch_size = 2;
  video.f_patch_size = 2;
  video.time_shift = 2.0;
  spec.tasks.push_back(video);
  return spec;
}

// A fresh temporary directory for one test.
inline std::string TempDir(const std::string& name) {
  const std::string dir = absl::StrCat(LVS_BINARY_DIR, "/tests/trainer/tmp/",
                                       name, "-", ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// A test with its own directory holding the tiny checkpoint (`dir_/init`)
// and four synthetic items of 5 latent frames of 8x8 (`records_`), run on
// one intra-op thread.
class TinyTrainingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    dir_ = TempDir(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    WriteTinyCheckpoint(dir_ + "/init");
    records_ = WriteSyntheticLatents(dir_ + "/data", 4, 5, 8, 8);
  }

  std::string dir_, records_;
};

}  // namespace lvs::trainer::testing

#endif  // LVS_TESTS_TRAINER_TRAINER_TEST_UTIL_H_
