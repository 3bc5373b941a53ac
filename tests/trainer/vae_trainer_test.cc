// VAE training from scratch: spec validation, the loss falls on synthetic
// clips, runs repeat for their seed, and the checkpoint loads back strictly
// through CogVideoXVae (the pipeline's loader) and reconstructs.
#include "trainer/vae_trainer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "tools/lvs_extract/item_list.h"
#include "tools/lvs_synth/synth.h"

namespace lvs::trainer {
namespace {

nlohmann::json TinyVaeConfig() {
  return {{"_class_name", "AutoencoderKLCogVideoX"},
          {"in_channels", 3},
          {"out_channels", 3},
          {"latent_channels", 4},
          {"block_out_channels", {8, 8, 8}},
          {"down_block_types",
           {"CogVideoXDownBlock3D", "CogVideoXDownBlock3D",
            "CogVideoXDownBlock3D"}},
          {"up_block_types",
           {"CogVideoXUpBlock3D", "CogVideoXUpBlock3D", "CogVideoXUpBlock3D"}},
          {"layers_per_block", 1},
          {"norm_num_groups", 4},
          {"norm_eps", 1e-6},
          {"temporal_compression_ratio", 4},
          {"use_quant_conv", false},
          {"use_post_quant_conv", false},
          {"scaling_factor", 1.0}};
}

class VaeTrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/vae-trainer-", getpid());
    std::filesystem::create_directories(dir_ + "/clips");
    synth::SynthOptions o;
    o.width = o.height = 32;
    o.frames = 9;
    for (const char* split : {"train", "heldout"}) {
      std::vector<nlohmann::json> records;
      for (int i = 0; i < 4; ++i) {
        const std::string rel = absl::StrCat("clips/", split, i, ".mp4");
        const synth::ClipSpec clip = synth::SampleClip(5, split, i, o);
        ASSERT_TRUE(synth::WriteClip(clip, o, dir_ + "/" + rel).ok());
        records.push_back(synth::ClipRecord(clip, rel, split));
      }
      ASSERT_TRUE(
          tools::WriteJsonl(absl::StrCat(dir_, "/", split, ".jsonl"), records)
              .ok());
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  nlohmann::json Spec() const {
    return {{"model_type", "vae"},
            {"records", {dir_ + "/train.jsonl"}},
            {"heldout", {dir_ + "/heldout.jsonl"}},
            {"vae_config", TinyVaeConfig()},
            {"batch_size", 2},
            {"crop_size", 16},
            {"max_frames", 9},
            {"learning_rate", 3e-3},
            {"warmup_steps", 5},
            {"ema_decay", 0.9},
            {"max_steps", 60},
            {"seed", 3}};
  }

  std::string dir_;
};

TEST_F(VaeTrainerTest, SpecErrorsNameTheField) {
  EXPECT_TRUE(IsVaeSpec(Spec()));
  EXPECT_FALSE(IsVaeSpec(nlohmann::json{{"model", "x"}}));
  nlohmann::json s = Spec();
  s["max_frames"] = 8;
  auto r = VaeTrainSpecFromJson(s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("max_frames"), std::string::npos);
  s = Spec();
  s["init_from"] = "/nowhere";
  r = VaeTrainSpecFromJson(s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("vae_config"), std::string::npos);
  s = Spec();
  s["crop_size"] = 18;  // Not a multiple of the spatial factor 4.
  auto spec = VaeTrainSpecFromJson(s);
  ASSERT_TRUE(spec.ok());
  auto tr = VaeTrainer::Create(*spec);
  ASSERT_FALSE(tr.ok());
  EXPECT_NE(tr.status().message().find("crop_size"), std::string::npos);
}

TEST_F(VaeTrainerTest, LossFallsAndTheCheckpointLoadsInThePipeline) {
  auto spec = VaeTrainSpecFromJson(Spec());
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto tr = VaeTrainer::Create(*spec);
  ASSERT_TRUE(tr.ok()) << tr.status();
  auto clips = LoadClips(spec->heldout);
  ASSERT_TRUE(clips.ok()) << clips.status();
  std::vector<double> losses;
  while (!(*tr)->done()) {
    auto st = (*tr)->Step();
    ASSERT_TRUE(st.ok()) << st.status();
    ASSERT_TRUE(std::isfinite(st->loss));
    EXPECT_EQ(st->task_loss.count("rec"), 1u);
    losses.push_back(st->loss);
  }
  auto mean = [](auto b, auto e) {
    double s = 0;
    for (auto i = b; i != e; ++i) s += *i;
    return s / (e - b);
  };
  const double head = mean(losses.begin(), losses.begin() + 10);
  const double tail = mean(losses.end() - 10, losses.end());
  EXPECT_LT(tail, 0.6 * head) << "head " << head << " tail " << tail;

  ASSERT_TRUE((*tr)->SaveCheckpoint(dir_ + "/ckpt").ok());
  // Strict load: every tensor present, none extra, shapes right.
  auto vae = vae::CogVideoXVae::Create(dir_ + "/ckpt", {});
  ASSERT_TRUE(vae.ok()) << vae.status();
  EXPECT_GT(vae->get()->config().scaling_factor, 0);
  auto psnr = ReconstructionPsnr(**vae, *clips);
  ASSERT_TRUE(psnr.ok()) << psnr.status();
  // 60 steps only teach the coarse colours: a finite, non-trivial PSNR.
  EXPECT_TRUE(std::isfinite(*psnr));
  EXPECT_GT(*psnr, 5.0);
  // The same spec makes the same first steps (seeded crops and noise).
  auto again = VaeTrainer::Create(*spec);
  ASSERT_TRUE(again.ok());
  auto st = (*again)->Step();
  ASSERT_TRUE(st.ok());
  EXPECT_DOUBLE_EQ(st->loss, losses[0]);
}

}  // namespace
}  // namespace lvs::trainer
