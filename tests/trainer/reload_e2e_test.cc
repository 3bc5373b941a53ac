// A checkpoint trained by lvs-trainer, reloaded into a running
// lvs-worker --model=lumina through AdminService.ReloadModel, end to end:
// lvs-server, the Lumina worker on the tiny golden checkpoints (CPU) and
// lvs-trainer run as real processes on loopback. The job fine-tunes the
// golden DiT on synthetic latents; the worker then serves its weights (the
// plain and the EMA variant) and, after reloading the golden directory, the
// golden weights again. Every video the worker streams (x264 lossless, so
// decoding gives back exactly what was encoded) is compared with the same
// request run by an in-process Pipeline on the same weights.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "model/dit/dit.h"
#include "model/io/safetensors.h"
#include "model/io/torch_pickle.h"
#include "model/pipeline/pipeline.h"
#include "nlohmann/json.hpp"
#include "tests/trainer/served_video.h"
#include "tests/worker/cluster.h"
#include "trainer/checkpoint.h"
#include "trainer/model_args_writer.h"

namespace lvs::trainer {
namespace {

namespace pb = ::lumina::video::v1;
using ::lvs::testing::Cluster;
using ::lvs::testing::DecodeFrames;
using ::lvs::testing::FreePort;
using ::lvs::testing::HttpGetPort;
using ::lvs::testing::MeanAbsDiff;
using ::lvs::testing::ReadFile;
using ::lvs::testing::Subprocess;

const std::string kGolden = LVS_GOLDEN_DIR;
const std::string kGoldenDiT = kGolden + "/dit";
constexpr int kGridPoints = 4;  // 3 denoising steps per video.

// Writes `n` cached-latent items ([16, frames, h, w] bf16) with caption
// features `cap_dim` wide (the golden text encoder's width) the way
// lvs-extract does; returns the record file.
std::string WriteLatents(const std::string& dir, int n, int64_t frames,
                         int64_t h, int64_t w, int64_t cap_dim) {
  std::filesystem::create_directories(dir);
  torch::manual_seed(11);
  io::TensorMap shard;
  std::ofstream rec(dir + "/records.jsonl");
  for (int i = 0; i < n; ++i) {
    const torch::Tensor ramp = torch::linspace(-1, 1, w).view({1, 1, 1, w});
    const torch::Tensor latent =
        (torch::randn({16, 1, 1, 1}) + 0.5 * ramp * torch::randn({16, 1, 1, 1}))
            .expand({16, frames, h, w})
            .contiguous();
    shard[absl::StrCat("item", i, ".latent")] = latent.to(torch::kBFloat16);
    shard[absl::StrCat("item", i, ".cap")] = torch::randn({4 + i, cap_dim});
    const nlohmann::json r = {{"path", absl::StrCat("clip", i, ".mp4")},
                              {"prompt", absl::StrCat("prompt ", i)},
                              {"shard", "shard-00000.safetensors"},
                              {"key", absl::StrCat("item", i, ".latent")},
                              {"cap_key", absl::StrCat("item", i, ".cap")},
                              {"shape", {16, frames, h, w}},
                              {"unimatch_flow", 2.0 + i}};
    rec << r.dump() << "\n";
  }
  EXPECT_TRUE(
      io::SaveSafetensors(dir + "/shard-00000.safetensors", shard).ok());
  EXPECT_TRUE(io::SaveSafetensors(dir + "/system_prompt.safetensors",
                                  {{"cap_feats", torch::randn({3, cap_dim})}})
                  .ok());
  return dir + "/records.jsonl";
}

// The request every generation of the test runs.
pb::GenerateVideoRequest VideoRequest() {
  return ::lvs::testing::SmallVideoRequest(
      "A red panda eats bamboo in a snowy forest.", kGridPoints);
}

class ReloadE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<Cluster>("reload");
    ASSERT_TRUE(cluster_->StartServer().ok());
    metrics_port_ = FreePort();
    auto worker = Subprocess::Start(
        {::lvs::testing::WorkerBinary(),
         absl::StrCat("--server=127.0.0.1:", cluster_->worker_port()),
         "--name=lumina0", "--model=lumina", "--dit=" + kGoldenDiT,
         "--text-encoder=" + kGolden + "/text_encoder",
         "--vae=" + kGolden + "/vae", "--device=cpu",
         absl::StrCat("--metrics-listen=127.0.0.1:", metrics_port_),
         "--x264-preset=ultrafast", "--x264-crf=0"},
        cluster_->dir() + "/lumina0.log");
    ASSERT_TRUE(worker.ok()) << worker.status();
    worker_ = std::make_unique<Subprocess>(*std::move(worker));
    ASSERT_TRUE(cluster_->WorkerListed("lumina0", absl::Seconds(90)))
        << ReadFile(worker_->log_path());
    auto trainer = Subprocess::Start(
        {LVS_TRAINER_BIN,
         absl::StrCat("--server=127.0.0.1:", cluster_->worker_port()),
         "--name=trainer0", "--work-dir=" + cluster_->dir() + "/train"},
        cluster_->dir() + "/trainer0.log");
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    trainer_ = std::make_unique<Subprocess>(*std::move(trainer));
  }

  // Fine-tunes the golden DiT for a few steps; returns the finished job.
  pb::TrainingJob Train() {
    pb::TrainingJobSpec s;
    s.set_init_from(kGoldenDiT);
    s.set_learning_rate(5e-3);
    s.set_max_steps(4);
    s.set_checkpoint_interval(0);
    s.set_seed(3);
    s.set_ema_decay(0.5);  // The EMA weights differ from both others.
    s.set_ema_interval(1);
    pb::TrainingTask* t = s.add_tasks();
    t->set_name("V-FP2");
    t->set_media_type(pb::MEDIA_TYPE_VIDEO);
    t->add_records(WriteLatents(cluster_->dir() + "/data", 4, 5, 8, 8, 48));
    t->set_global_batch_size(2);
    t->set_micro_batch_size(1);
    t->set_image_size(64);
    t->set_max_frames(8);
    t->set_task_ratio(1);
    t->set_patch("2x2");
    pb::CreateTrainingJobRequest req;
    *req.mutable_spec() = s;
    pb::TrainingJob job;
    {
      grpc::ClientContext ctx;
      const grpc::Status st =
          cluster_->admin().CreateTrainingJob(&ctx, req, &job);
      EXPECT_TRUE(st.ok()) << st.error_message();
    }
    const absl::Time end = absl::Now() + absl::Seconds(180);
    while (absl::Now() < end) {
      pb::GetTrainingJobRequest get;
      get.set_name(job.name());
      grpc::ClientContext ctx;
      cluster_->admin().GetTrainingJob(&ctx, get, &job);
      if (job.state() == pb::SUCCEEDED || job.state() == pb::FAILED ||
          job.state() == pb::CANCELLED) {
        break;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    return job;
  }

  // Reloads lumina0 with `checkpoint` (or the final checkpoint of
  // `training_job`) and returns its result.
  pb::WorkerReload Reload(const std::string& checkpoint, bool use_ema,
                          const std::string& training_job = "") {
    pb::ReloadModelRequest req;
    req.add_workers("lumina0");
    req.set_checkpoint(checkpoint);
    req.set_training_job(training_job);
    req.set_use_ema(use_ema);
    pb::ReloadModelResponse resp;
    grpc::ClientContext ctx;
    const grpc::Status st = cluster_->admin().ReloadModel(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(resp.results_size(), 1);
    return resp.results_size() == 1 ? resp.results(0) : pb::WorkerReload();
  }

  // Returns the model version ListWorkers reports for lumina0.
  std::string ListedVersion() {
    pb::ListWorkersResponse resp;
    grpc::ClientContext ctx;
    cluster_->admin().ListWorkers(&ctx, pb::ListWorkersRequest(), &resp);
    for (const pb::Worker& w : resp.workers()) {
      if (w.name() == "lumina0") return w.capabilities().model_version();
    }
    return "<not listed>";
  }

  // Generates VideoRequest() on the worker; returns the decoded frames.
  std::vector<uint8_t> Serve() {
    absl::StatusOr<pb::VideoJob> job = cluster_->Create(VideoRequest());
    EXPECT_TRUE(job.ok()) << job.status();
    if (!job.ok()) return {};
    absl::StatusOr<pb::VideoJob> done =
        cluster_->WaitFinished(job->name(), absl::Seconds(120));
    EXPECT_TRUE(done.ok()) << done.status();
    if (!done.ok()) return {};
    EXPECT_EQ(done->state(), pb::SUCCEEDED) << done->error().message() << "\n"
                                            << ReadFile(worker_->log_path());
    // Progress counts denoising steps: grid points - 1.
    EXPECT_EQ(done->progress().step(), kGridPoints - 1);
    EXPECT_EQ(done->progress().total_steps(), kGridPoints - 1);
    absl::StatusOr<std::string> mp4 = cluster_->Watch(job->name(), 0);
    EXPECT_TRUE(mp4.ok()) << mp4.status();
    return mp4.ok() ? DecodeFrames(*mp4) : std::vector<uint8_t>();
  }

  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<Subprocess> worker_;
  std::unique_ptr<Subprocess> trainer_;
  int metrics_port_ = 0;
};

// VideoRequest() run by `pipe` in this process.
std::vector<uint8_t> Offline(pipeline::Pipeline& pipe) {
  return ::lvs::testing::OfflineFrames(pipe, VideoRequest());
}

TEST_F(ReloadE2eTest, TrainedCheckpointIsServedAfterReloadModel) {
  const pb::TrainingJob job = Train();
  ASSERT_EQ(job.state(), pb::SUCCEEDED)
      << job.DebugString() << ReadFile(trainer_->log_path());
  const std::string ckpt = job.last_checkpoint().path();
  ASSERT_FALSE(ckpt.empty()) << job.DebugString();
  for (const char* file : {kModelFile, kEmaFile, kModelArgsFile}) {
    EXPECT_TRUE(std::filesystem::exists(ckpt + "/" + file)) << ckpt << file;
  }

  // What the three weight sets produce, run in this process.
  pipeline::PipelineOptions po;
  po.dit_dir = kGoldenDiT;
  po.text_encoder_dir = kGolden + "/text_encoder";
  po.vae_dir = kGolden + "/vae";
  auto pipe = pipeline::Pipeline::Create(po);
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  const std::vector<uint8_t> golden = Offline(**pipe);
  ASSERT_TRUE((*pipe)->ReloadDiT(ckpt, false).ok());
  const std::vector<uint8_t> trained = Offline(**pipe);
  ASSERT_TRUE((*pipe)->ReloadDiT(ckpt, true).ok());
  const std::vector<uint8_t> ema = Offline(**pipe);
  ASSERT_EQ(golden.size(), 9u * 64 * 64 * 3);
  ASSERT_EQ(trained.size(), golden.size());
  ASSERT_EQ(ema.size(), golden.size());
  // Training changed what the model generates, and the EMA is a third set.
  RecordProperty("golden_vs_trained", MeanAbsDiff(golden, trained));
  RecordProperty("golden_vs_ema", MeanAbsDiff(golden, ema));
  RecordProperty("trained_vs_ema", MeanAbsDiff(trained, ema));
  EXPECT_GT(MeanAbsDiff(golden, trained), 0);
  EXPECT_GT(MeanAbsDiff(golden, ema), 0);
  EXPECT_GT(MeanAbsDiff(trained, ema), 0);

  // Before any reload the worker serves the golden weights.
  EXPECT_EQ(ListedVersion(), kGoldenDiT);
  std::vector<uint8_t> served = Serve();
  EXPECT_EQ(MeanAbsDiff(served, golden), 0);

  // The trained checkpoint by path.
  pb::WorkerReload r = Reload(ckpt, false);
  EXPECT_EQ(r.status().code(), 0) << r.status().message();
  EXPECT_EQ(r.model_version(), ckpt);
  EXPECT_EQ(ListedVersion(), ckpt);
  served = Serve();
  EXPECT_EQ(MeanAbsDiff(served, trained), 0)
      << "vs golden: " << MeanAbsDiff(served, golden);

  // The EMA weights of the job's final checkpoint, by training job name.
  r = Reload("", true, job.name());
  EXPECT_EQ(r.status().code(), 0) << r.status().message();
  EXPECT_EQ(r.model_version(), ckpt + " (ema)");
  served = Serve();
  EXPECT_EQ(MeanAbsDiff(served, ema), 0)
      << "vs trained: " << MeanAbsDiff(served, trained);

  // A broken checkpoint is refused and the EMA weights stay in use.
  r = Reload(cluster_->dir() + "/no-such-checkpoint", false);
  EXPECT_EQ(r.status().code(), static_cast<int>(absl::StatusCode::kNotFound))
      << r.status().message();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "no-such-checkpoint"))
      << r.status().message();
  EXPECT_EQ(r.model_version(), ckpt + " (ema)");

  // Back to the golden directory: the first video again.
  r = Reload(kGoldenDiT, false);
  EXPECT_EQ(r.status().code(), 0) << r.status().message();
  EXPECT_EQ(r.model_version(), kGoldenDiT);
  served = Serve();
  EXPECT_EQ(MeanAbsDiff(served, golden), 0);

  // Four videos of 3 denoising steps each on the worker's own counter.
  std::string metrics;
  ASSERT_EQ(HttpGetPort(metrics_port_, "/metrics", &metrics), 200);
  EXPECT_TRUE(absl::StrContains(
      metrics, "lvs_worker_denoise_steps_total{worker=\"lumina0\"} 12\n"))
      << metrics;
}

TEST_F(ReloadE2eTest, ACheckpointWithOtherPatchCombinationsIsRefused) {
  // The golden architecture with only the 1x2 patches: the worker has
  // advertised limits for 1x2, 2x2 and 2x4.
  absl::StatusOr<nlohmann::json> args =
      io::ReadPickledArgs(kGoldenDiT + "/" + kModelArgsFile);
  ASSERT_TRUE(args.ok()) << args.status();
  (*args)["patch_sizes"] = {2};
  (*args)["f_patch_sizes"] = {1};
  absl::StatusOr<dit::DiTConfig> config = dit::DiTConfigFromArgs(*args, "test");
  ASSERT_TRUE(config.ok()) << config.status();
  const std::string dir = cluster_->dir() + "/patch-1x2";
  std::filesystem::create_directories(dir);
  dit::MultiScaleNextDiT model(*config);
  io::TensorMap weights;
  for (const auto& p : model->named_parameters()) weights[p.key()] = p.value();
  ASSERT_TRUE(io::SaveSafetensors(dir + "/" + kModelFile, weights).ok());
  ASSERT_TRUE(WriteModelArgs(dir + "/" + kModelArgsFile, *args).ok());

  const pb::WorkerReload r = Reload(dir, false);
  EXPECT_EQ(r.status().code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(absl::StrContains(r.status().message(), "patch combinations"))
      << r.status().message();
  EXPECT_EQ(r.model_version(), kGoldenDiT);
  EXPECT_EQ(ListedVersion(), kGoldenDiT);
}

}  // namespace
}  // namespace lvs::trainer
