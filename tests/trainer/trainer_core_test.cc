// The training core on a tiny DiT and synthetic cached latents: the loss
// falls, a resumed run repeats an uninterrupted one bit for bit, the
// checkpoint loads strictly in the worker's layout, bad specs name their
// field, the latent handling follows the reference, and a fresh model starts
// from the reference's initialisation (adaLN-Zero: its output is zero).
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include "absl/strings/match.h"
#include "model/io/torch_pickle.h"
#include "tests/trainer/trainer_test_util.h"
#include "trainer/flow_matching.h"
#include "trainer/init_weights.h"
#include "trainer/latent_dataset.h"
#include "trainer/trainer.h"

namespace lvs::trainer {
namespace {

class TrainerCoreTest : public testing::TinyTrainingTest {
 protected:
  TrainSpec Spec(int64_t steps) const {
    return testing::TinyVideoSpec(dir_ + "/init", records_, steps);
  }
};

// The mean flow-matching loss of the model on a fixed set of items, times
// and noise (independent of the training randomness).
double EvalLoss(Trainer& tr, const std::string& records) {
  torch::NoGradGuard no_grad;
  auto ds = LatentDataset::Open({records}, {}, "eval").value();
  FlowBatch batch;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1234);
  const int64_t n = static_cast<int64_t>(ds->size());
  std::vector<torch::Tensor> caps;
  int64_t max_len = 0;
  for (int64_t i = 0; i < n; ++i) {
    batch.x1.push_back(ds->Latent(i).value().narrow(1, 1, 2).contiguous());
    batch.x0.push_back(at::randn(batch.x1.back().sizes(), gen));
    caps.push_back(ds->Caption(i, false).value());
    max_len = std::max<int64_t>(max_len, caps.back().size(0));
  }
  batch.t = torch::linspace(0.1, 0.9, n);
  batch.cap_feats = torch::zeros({n, max_len, 32});
  batch.cap_mask = torch::zeros({n, max_len}, torch::kInt32);
  for (int64_t i = 0; i < n; ++i) {
    batch.cap_feats[i].narrow(0, 0, caps[i].size(0)).copy_(caps[i]);
    batch.cap_mask[i].narrow(0, 0, caps[i].size(0)).fill_(1);
  }
  batch.motion = torch::full({n}, -1.0);
  return FlowMatchingLoss(tr.model(), batch, 2, 2, 0.0).mean().item<double>();
}

TEST_F(TrainerCoreTest, LossFalls) {
  auto tr = Trainer::Create(Spec(40)).value();
  const double before = EvalLoss(*tr, records_);
  double first = 0, last = 0;
  while (!tr->done()) {
    StepStats s = tr->Step().value();
    ASSERT_TRUE(std::isfinite(s.loss));
    ASSERT_EQ(s.task_loss.count("V-FP2"), 1u);
    EXPECT_EQ(s.samples, 4);
    EXPECT_GT(s.grad_norm, 0);
    if (s.step < 5) first += s.loss / 5;
    if (s.step >= 35) last += s.loss / 5;
  }
  const double after = EvalLoss(*tr, records_);
  EXPECT_LT(after, 0.7 * before) << "eval loss " << before << " -> " << after;
  EXPECT_LT(last, first) << "training loss " << first << " -> " << last;
}

TEST(InitWeightsTest, RulesFollowTheReference) {
  EXPECT_EQ(InitRuleFor("layers.0.adaLN_modulation.1.weight", 2),
            InitRule::kZeros);
  EXPECT_EQ(InitRuleFor("layers.3.attention.gate", 1), InitRule::kZeros);
  EXPECT_EQ(InitRuleFor("all_final_layer.2-1.linear.weight", 2),
            InitRule::kZeros);
  EXPECT_EQ(InitRuleFor("cap_embedder.1.weight", 2), InitRule::kZeros);
  EXPECT_EQ(InitRuleFor("cap_embedder.0.weight", 1), InitRule::kOnes);
  EXPECT_EQ(InitRuleFor("t_embedder.mlp.0.weight", 2), InitRule::kNormal002);
  EXPECT_EQ(InitRuleFor("t_embedder.mlp.0.bias", 1), InitRule::kZeros);
  EXPECT_EQ(InitRuleFor("pad_token", 1), InitRule::kNormal002);
  EXPECT_EQ(InitRuleFor("layers.0.attention.wq.weight", 2),
            InitRule::kXavierUniform);
  EXPECT_EQ(InitRuleFor("all_x_embedder.2-1.weight", 2),
            InitRule::kXavierUniform);
  EXPECT_EQ(InitRuleFor("all_x_embedder.2-1.bias", 1), InitRule::kZeros);
  EXPECT_EQ(InitRuleFor("layers.0.ffn_norm1.weight", 1), InitRule::kOnes);
}

TEST_F(TrainerCoreTest, FreshModelStartsFromTheReferenceInit) {
  TrainSpec spec = Spec(1);
  spec.init_from.clear();
  spec.model = "MultiScaleNextDiT_test_tiny";
  spec.model_args = testing::TinyModelArgs();
  auto tr = Trainer::Create(spec);
  ASSERT_TRUE(tr.ok()) << tr.status();
  for (const auto& p : (*tr)->model()->named_parameters()) {
    const InitRule rule = InitRuleFor(p.key(), p.value().dim());
    const torch::Tensor& w = p.value();
    if (rule == InitRule::kZeros) {
      EXPECT_EQ(w.abs().max().item<double>(), 0.0) << p.key();
    } else if (rule == InitRule::kXavierUniform) {
      const double bound = std::sqrt(6.0 / (w.size(0) + w.size(1)));
      EXPECT_LE(w.abs().max().item<double>(), bound + 1e-6) << p.key();
      EXPECT_GT(w.abs().max().item<double>(), 0.5 * bound) << p.key();
    }
  }
  // adaLN-Zero: every block starts as the identity and the output is zero,
  // so the first loss is the mean square of the target (about 2).
  const double loss = EvalLoss(**tr, records_);
  EXPECT_GT(loss, 1.0);
  torch::NoGradGuard no_grad;
  auto out = (*tr)->model()->forward_list(
      {torch::randn({16, 2, 8, 8})}, torch::full({1}, 0.5),
      torch::randn({1, 3, 32}), torch::ones({1, 3}, torch::kInt32),
      torch::full({1}, -1.0), 2, 1);
  EXPECT_EQ(out[0].abs().max().item<double>(), 0.0);
}

TEST_F(TrainerCoreTest, ResumeRepeatsTheUninterruptedTrajectory) {
  const TrainSpec spec = Spec(6);
  auto full = Trainer::Create(spec).value();
  std::vector<double> losses;
  std::string ckpt;
  while (!full->done()) {
    losses.push_back(full->Step().value().loss);
    if (full->next_step() == 3) {
      ckpt = CheckpointDir(dir_ + "/ckpt", 3);
      ASSERT_TRUE(full->SaveCheckpoint(ckpt).ok());
    }
  }
  auto resumed = Trainer::Create(spec).value();
  ASSERT_TRUE(resumed->Resume(ckpt).ok());
  EXPECT_EQ(resumed->next_step(), 3);
  while (!resumed->done()) {
    const StepStats s = resumed->Step().value();
    EXPECT_EQ(s.loss, losses[s.step]) << "step " << s.step;  // Bitwise.
  }
  const io::TensorMap a = full->Parameters(), b = resumed->Parameters();
  for (const auto& [key, t] : a) {
    EXPECT_TRUE(torch::equal(t, b.at(key))) << key;
  }
  // The EMA of both runs agrees too (it is in the final checkpoints).
  ASSERT_TRUE(full->SaveCheckpoint(dir_ + "/full").ok());
  ASSERT_TRUE(resumed->SaveCheckpoint(dir_ + "/resumed").ok());
  const io::TensorMap ea =
      io::LoadSafetensors(dir_ + "/full/" + kEmaFile).value();
  const io::TensorMap eb =
      io::LoadSafetensors(dir_ + "/resumed/" + kEmaFile).value();
  for (const auto& [key, t] : ea)
    EXPECT_TRUE(torch::equal(t, eb.at(key))) << key;
}

TEST_F(TrainerCoreTest, CheckpointLoadsStrictlyInTheWorkerLayout) {
  auto tr = Trainer::Create(Spec(2)).value();
  ASSERT_TRUE(tr->Step().ok());
  const std::string ckpt = CheckpointDir(dir_ + "/ckpt", 1);
  ASSERT_TRUE(tr->SaveCheckpoint(ckpt).ok());
  EXPECT_FALSE(tr->SaveCheckpoint(ckpt).ok());  // Never overwritten.
  EXPECT_EQ(LatestCheckpoint(dir_ + "/ckpt").value(), ckpt);
  // What LoadDiT does: model_args.pth -> config, consolidated -> strict load.
  const nlohmann::json args =
      io::ReadPickledArgs(ckpt + "/" + kModelArgsFile).value();
  const dit::DiTConfig config = dit::DiTConfigFromArgs(args, ckpt).value();
  for (const char* file : {kModelFile, kEmaFile}) {
    absl::StatusOr<dit::MultiScaleNextDiT> loaded = dit::BuildDiT(
        config, io::LoadSafetensors(ckpt + "/" + file).value(), {}, ckpt);
    ASSERT_TRUE(loaded.ok()) << file << ": " << loaded.status();
  }
  const io::TensorMap saved =
      io::LoadSafetensors(ckpt + "/" + kModelFile).value();
  for (const auto& [key, t] : tr->Parameters()) {
    EXPECT_TRUE(torch::equal(t, saved.at(key))) << key;
  }
}

TEST_F(TrainerCoreTest, BadSpecsNameTheField) {
  TrainSpec missing = Spec(2);
  std::filesystem::remove(dir_ + "/data/shard-00000.safetensors");
  absl::StatusOr<std::unique_ptr<Trainer>> tr = Trainer::Create(missing);
  ASSERT_FALSE(tr.ok());
  EXPECT_EQ(tr.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(tr.status().message(), "tasks[0].records[0]"))
      << tr.status();
  TrainSpec patch = Spec(2);
  patch.tasks[0].f_patch_size = 4;
  tr = Trainer::Create(patch);
  ASSERT_FALSE(tr.ok());
  EXPECT_EQ(tr.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(tr.status().message(), "tasks[0].patch"))
      << tr.status();
}

TEST_F(TrainerCoreTest, MultiTaskMixFollowsTheRatios) {
  TrainSpec spec = Spec(4);
  TaskSpec image = spec.tasks[0];
  image.name = "I-FP1";
  image.media_type = MediaType::kImage;
  image.records = {testing::WriteSyntheticLatents(dir_ + "/img", 3, 1, 8, 8)};
  image.f_patch_size = 1;
  image.global_batch_size = 2;
  image.micro_batch_size = 1;
  spec.tasks[0].task_ratio = 2;
  image.task_ratio = 1;
  spec.tasks.push_back(image);
  auto tr = Trainer::Create(spec).value();
  for (int64_t step = 0; step < 4; ++step) {
    const StepStats s = tr->Step().value();
    EXPECT_EQ(s.task_loss.count("V-FP2"), 1u);
    EXPECT_EQ(s.task_loss.count("I-FP1"), step % 2 == 0 ? 1u : 0u) << step;
    EXPECT_EQ(s.samples, step % 2 == 0 ? 6 : 4);
  }
}

TEST(PrepareLatentTest, DropsFirstLatentTakesWindowAndCrops) {
  std::mt19937_64 rng(3);
  torch::Tensor latent = torch::arange(25)
                             .to(torch::kFloat32)
                             .view({1, 25, 1, 1})
                             .expand({16, 25, 10, 14});
  for (int i = 0; i < 20; ++i) {
    torch::Tensor x = PrepareLatent(latent, 32, 2, 2, rng);
    ASSERT_EQ(x.sizes(), torch::IntArrayRef({16, 8, 8, 12}));
    const float first = x[0][0][0][0].item<float>();
    EXPECT_GE(first, 1);  // Latent 0 never appears.
    EXPECT_LE(first, 17);
    EXPECT_EQ(x[0][7][0][0].item<float>(), first + 7);  // Contiguous window.
  }
  torch::Tensor odd = PrepareLatent(latent.narrow(1, 0, 4), 32, 2, 2, rng);
  EXPECT_EQ(odd.size(1), 2);  // 3 latents left, truncated to a multiple of 2.
  torch::Tensor image = PrepareLatent(latent.narrow(1, 0, 1), 32, 4, 2, rng);
  EXPECT_EQ(image.sizes(), torch::IntArrayRef({16, 1, 8, 12}));
}

TEST(SampleTimeTest, ShiftMovesTimesTowardNoise) {
  at::Generator a = at::make_generator<at::CPUGeneratorImpl>(5);
  at::Generator b = at::make_generator<at::CPUGeneratorImpl>(5);
  for (int i = 0; i < 50; ++i) {
    const float t = SampleTime("uniform", 1.0, a);
    const float s = SampleTime("uniform", 4.0, b);
    ASSERT_GE(t, 0.0f);
    ASSERT_LT(t, 1.0f);
    EXPECT_NEAR(s, t / (t + 4 - 4 * t), 1e-6);
  }
  at::Generator c = at::make_generator<at::CPUGeneratorImpl>(6);
  for (int i = 0; i < 50; ++i) {
    const float t = SampleTime("uniform_0.25_0.5", 1.0, c);
    EXPECT_GE(t, 0.25f);
    EXPECT_LT(t, 0.5f);
  }
}

}  // namespace
}  // namespace lvs::trainer
