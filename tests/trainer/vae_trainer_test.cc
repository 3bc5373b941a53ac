// VAE training from scratch: spec validation, the loss falls on synthetic
// clips, runs repeat for their seed, and the checkpoint loads back strictly
// through CogVideoXVae (the pipeline's loader) and reconstructs; the saved
// weights carry the latent scale (mode() * the pipeline's constant has unit
// std) and folding a scale into them leaves decode(encode(x)) unchanged.
#include "trainer/vae_trainer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "model/io/safetensors.h"
#include "model/io/torch_tensors.h"
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

// [1, 3, t, H, W] in [-1, 1] of a uint8 clip cut to 1 + 4k frames.
torch::Tensor Video(const torch::Tensor& clip) {
  const int64_t t = 1 + (clip.size(0) - 1) / 4 * 4;
  return clip.narrow(0, 0, t)
                 .permute({3, 0, 1, 2})
                 .unsqueeze(0)
                 .to(torch::kFloat32) /
             127.5 -
         1.0;  // [T, H, W, 3] -> [1, 3, T, H, W]
}

TEST_F(VaeTrainerTest, CheckpointCarriesTheLatentScale) {
  nlohmann::json j = Spec();
  j["max_steps"] = 10;
  auto spec = VaeTrainSpecFromJson(j);
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto tr = VaeTrainer::Create(*spec);
  ASSERT_TRUE(tr.ok()) << tr.status();
  while (!(*tr)->done()) ASSERT_TRUE((*tr)->Step().ok());
  const std::string a = dir_ + "/a", b = dir_ + "/b";
  ASSERT_TRUE((*tr)->SaveCheckpoint(a).ok());
  auto vae_a = vae::CogVideoXVae::Create(a, {});
  ASSERT_TRUE(vae_a.ok()) << vae_a.status();
  EXPECT_DOUBLE_EQ((*vae_a)->config().scaling_factor,
                   vae::kPipelineLatentScale);
  auto train = LoadClips(spec->records);
  ASSERT_TRUE(train.ok()) << train.status();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> means;
  for (const torch::Tensor& clip : *train) {
    auto d = (*vae_a)->Encode(Video(clip));
    ASSERT_TRUE(d.ok()) << d.status();
    means.push_back(d->Mode().flatten());
  }
  const double std_dev =
      (torch::cat(means) * vae::kPipelineLatentScale).std().item<double>();
  EXPECT_NEAR(std_dev, 1.0, 1e-3);

  // Fold a further scale 2 into every tensor: means double, variances
  // quadruple, and the decoder gives the same frames.
  auto tensors =
      io::LoadSafetensors(a + "/diffusion_pytorch_model.safetensors");
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  std::vector<torch::Tensor> keep;
  std::vector<io::TensorToWrite> out;
  for (const auto& [name, t] : *tensors) {
    keep.push_back(
        FoldLatentScale(name, t.to(torch::kFloat32), 4, 2.0).contiguous());
    io::TensorToWrite w;
    w.name = name;
    w.dtype = io::DType::kF32;
    w.shape = keep.back().sizes().vec();
    w.data = keep.back().data_ptr();
    w.nbytes = keep.back().numel() * sizeof(float);
    out.push_back(w);
  }
  std::filesystem::create_directories(b);
  std::filesystem::copy_file(a + "/config.json", b + "/config.json");
  ASSERT_TRUE(
      io::WriteSafetensors(b + "/diffusion_pytorch_model.safetensors", out)
          .ok());
  auto vae_b = vae::CogVideoXVae::Create(b, {});
  ASSERT_TRUE(vae_b.ok()) << vae_b.status();
  const torch::Tensor x = Video((*train)[0]);
  auto da = (*vae_a)->Encode(x);
  auto db = (*vae_b)->Encode(x);
  ASSERT_TRUE(da.ok() && db.ok());
  EXPECT_TRUE(torch::allclose(db->mean, 2.0 * da->mean, 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(db->logvar.clamp(-25, 15),
                              (da->logvar + 2.0 * std::log(2.0)).clamp(-25, 15),
                              1e-4, 1e-4));
  auto ya = (*vae_a)->Decode(da->mean);
  auto yb = (*vae_b)->Decode(db->mean);
  ASSERT_TRUE(ya.ok() && yb.ok());
  EXPECT_LT((*ya - *yb).abs().max().item<double>(), 1e-4);
}

}  // namespace
}  // namespace lvs::trainer
