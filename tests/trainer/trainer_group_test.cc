// Mixed precision and in-process data parallelism on a tiny DiT: bf16
// training keeps fp32 masters, learns, follows the fp32 trajectory closely
// and resumes bit for bit; a two-rank in-process group (c10d Gloo over a
// HashStore) matches one rank with the same global batch.
#include <gtest/gtest.h>

#include <cstdio>

#include "absl/strings/match.h"
#include "tests/trainer/trainer_test_util.h"
#include "trainer/trainer.h"
#include "trainer/trainer_group.h"

namespace lvs::trainer {
namespace {

class TrainerGroupTest : public testing::TinyTrainingTest {
 protected:
  TrainSpec Spec(int64_t steps, TrainPrecision precision) const {
    TrainSpec spec = testing::TinyVideoSpec(dir_ + "/init", records_, steps);
    spec.precision = precision;
    return spec;
  }
};

// ||a - b|| / ||b|| over all parameters.
double RelativeDistance(const io::TensorMap& a, const io::TensorMap& b) {
  double num = 0, den = 0;
  for (const auto& [key, t] : b) {
    num += (a.at(key) - t).pow(2).sum().item<double>();
    den += t.pow(2).sum().item<double>();
  }
  return std::sqrt(num / den);
}

// The parameter change since `init`.
io::TensorMap Delta(const io::TensorMap& now, const io::TensorMap& init) {
  io::TensorMap out;
  for (const auto& [key, t] : now) out[key] = t - init.at(key);
  return out;
}

io::TensorMap Clone(const io::TensorMap& m) {
  io::TensorMap out;
  for (const auto& [key, t] : m) out[key] = t.clone();
  return out;
}

TEST_F(TrainerGroupTest, Bf16KeepsFp32MastersAndLearns) {
  auto tr = Trainer::Create(Spec(40, TrainPrecision::kBFloat16)).value();
  EXPECT_EQ(tr->compute_dtype(), torch::kBFloat16);
  for (const auto& p : tr->model()->parameters()) {
    ASSERT_EQ(p.scalar_type(), torch::kBFloat16);
  }
  const io::TensorMap init = Clone(tr->Parameters());
  for (const auto& [key, t] : init) ASSERT_EQ(t.scalar_type(), torch::kFloat32);
  double first = 0, last = 0;
  while (!tr->done()) {
    const StepStats s = tr->Step().value();
    ASSERT_TRUE(std::isfinite(s.loss) && std::isfinite(s.grad_norm));
    if (s.step < 5) first += s.loss / 5;
    if (s.step >= 35) last += s.loss / 5;
  }
  EXPECT_LT(last, 0.8 * first) << "training loss " << first << " -> " << last;
  std::printf("bf16 training loss %.4g -> %.4g\n", first, last);
  // The bf16 parameters are the masters rounded.
  const io::TensorMap masters = tr->Parameters();
  for (const auto& p : tr->model()->named_parameters()) {
    EXPECT_TRUE(
        torch::equal(p.value(), masters.at(p.key()).to(torch::kBFloat16)))
        << p.key();
  }
  // Checkpoints hold the fp32 masters.
  ASSERT_TRUE(tr->SaveCheckpoint(dir_ + "/ckpt").ok());
  const io::TensorMap saved =
      io::LoadSafetensors(dir_ + "/ckpt/" + kModelFile).value();
  for (const auto& [key, t] : masters) {
    ASSERT_EQ(saved.at(key).scalar_type(), torch::kFloat32) << key;
    EXPECT_TRUE(torch::equal(saved.at(key), t)) << key;
  }
}

TEST_F(TrainerGroupTest, Bf16FollowsTheFp32Trajectory) {
  auto fp32 = Trainer::Create(Spec(4, TrainPrecision::kFloat32)).value();
  auto bf16 = Trainer::Create(Spec(4, TrainPrecision::kBFloat16)).value();
  const io::TensorMap init = Clone(fp32->Parameters());
  EXPECT_EQ(RelativeDistance(bf16->Parameters(), init), 0.0);
  while (!fp32->done()) {
    const StepStats a = fp32->Step().value();
    const StepStats b = bf16->Step().value();
    EXPECT_NEAR(b.loss, a.loss, 0.05 * a.loss) << "step " << a.step;
  }
  // The updates agree to bf16 accuracy (Adam's first steps move every
  // weight by about lr, so rounding shows up as a few per cent).
  const double d = RelativeDistance(Delta(bf16->Parameters(), init),
                                    Delta(fp32->Parameters(), init));
  std::printf("bf16 vs fp32 relative update difference %.3g\n", d);
  EXPECT_LT(d, 0.25) << "relative update difference";
  EXPECT_GT(d, 0.0) << "bf16 arithmetic should differ from fp32";
}

TEST_F(TrainerGroupTest, Bf16ResumeRepeatsTheTrajectory) {
  const TrainSpec spec = Spec(4, TrainPrecision::kBFloat16);
  auto full = Trainer::Create(spec).value();
  std::vector<double> losses;
  while (!full->done()) {
    losses.push_back(full->Step().value().loss);
    if (full->next_step() == 2) {
      ASSERT_TRUE(full->SaveCheckpoint(dir_ + "/ckpt").ok());
    }
  }
  auto resumed = Trainer::Create(spec).value();
  ASSERT_TRUE(resumed->Resume(dir_ + "/ckpt").ok());
  while (!resumed->done()) {
    const StepStats s = resumed->Step().value();
    EXPECT_EQ(s.loss, losses[s.step]) << "step " << s.step;
  }
  EXPECT_EQ(RelativeDistance(resumed->Parameters(), full->Parameters()), 0.0);
}

#ifdef LVS_HAVE_C10D_GLOO
TEST_F(TrainerGroupTest, TwoRanksInOneProcessMatchOneRank) {
  TrainSpec one = Spec(4, TrainPrecision::kFloat32);
  TrainSpec two = one;
  two.data_parallel = 2;
  auto single = TrainerGroup::Create(one, "cpu").value();
  auto group = TrainerGroup::Create(two, "cpu").value();
  ASSERT_EQ(group->size(), 2u);
  while (!single->done()) {
    const StepStats a = single->Step().value();
    const StepStats b = group->Step().value();
    EXPECT_EQ(b.samples, 4);
    // Rank losses are means over each half of the batch; their mean is the
    // whole batch's mean.
    EXPECT_NEAR(b.loss, a.loss, 1e-5 * std::abs(a.loss)) << "step " << a.step;
    EXPECT_NEAR(b.grad_norm, a.grad_norm, 1e-4 * a.grad_norm);
  }
  EXPECT_LT(RelativeDistance(group->rank(0).Parameters(),
                             single->rank(0).Parameters()),
            1e-5);
  // Both ranks hold the same weights.
  EXPECT_EQ(RelativeDistance(group->rank(1).Parameters(),
                             group->rank(0).Parameters()),
            0.0);
}
#endif

TEST_F(TrainerGroupTest, MissingDevicesFailThePrecondition) {
  if (torch::cuda::device_count() >= 2) GTEST_SKIP() << "has two GPUs";
  TrainSpec spec = Spec(1, TrainPrecision::kFloat32);
  spec.data_parallel = 2;
  const auto group = TrainerGroup::Create(spec, "cuda:0");
  ASSERT_FALSE(group.ok());
  EXPECT_EQ(group.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(group.status().message(), "data_parallel"))
      << group.status();
  EXPECT_EQ(TrainerGroup::Create(spec, "tpu:0").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lvs::trainer
