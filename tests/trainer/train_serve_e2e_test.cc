// The whole loop through the services, with few steps: lvs-server,
// lvs-trainer and lvs-worker --model=lumina (the tiny golden checkpoints,
// CPU) run as real processes on loopback. lvs-synth makes a few short
// clips; `lvs train submit` runs a leased VAE job (a fresh VAE with 8 latent
// channels) and, on the latents and caption features lvs-extract caches
// with that VAE, a leased DiT job (a fresh DiT taking those 8 channels);
// `lvs workers reload --checkpoint DIT --vae VAE` then makes the worker
// serve the pair. The served video must be exactly what an in-process
// pipeline makes from the trained checkpoints, and differ from the video of
// the same request before the reload.
//
// A second test starts the worker on a DiT folder carrying
// sample_config.json: the worker advertises it as its default, and a
// request without sample config or steps runs it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "model/io/torch_pickle.h"
#include "model/pipeline/pipeline.h"
#include "model/sampler/checkpoint_defaults.h"
#include "nlohmann/json.hpp"
#include "tests/trainer/served_video.h"
#include "tests/worker/cluster.h"

namespace lvs::trainer {
namespace {

namespace pb = ::lumina::video::v1;
namespace fs = std::filesystem;
using ::lvs::testing::Cluster;
using ::lvs::testing::DecodeFrames;
using ::lvs::testing::MeanAbsDiff;
using ::lvs::testing::OfflineFrames;
using ::lvs::testing::ReadFile;
using ::lvs::testing::Subprocess;

const std::string kGolden = LVS_GOLDEN_DIR;
constexpr int kGridPoints = 4;  // 3 denoising steps per video.

pb::GenerateVideoRequest VideoRequest() {
  return ::lvs::testing::SmallVideoRequest(
      "a red circle moves to the left across a black background", kGridPoints);
}

class TrainServeE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<Cluster>("train-serve");
    ASSERT_TRUE(cluster_->StartServer().ok());
    work_ = cluster_->dir() + "/work";
    fs::create_directories(work_);
  }

  // Starts lumina0 on `dit` with the golden text encoder and VAE.
  void StartWorker(const std::string& dit) {
    auto worker = Subprocess::Start(
        {::lvs::testing::WorkerBinary(),
         absl::StrCat("--server=127.0.0.1:", cluster_->worker_port()),
         "--name=lumina0", "--model=lumina", "--dit=" + dit,
         "--text-encoder=" + kGolden + "/text_encoder",
         "--vae=" + kGolden + "/vae", "--device=cpu", "--threads=1",
         "--x264-preset=ultrafast", "--x264-crf=0"},
        cluster_->dir() + "/lumina0.log");
    ASSERT_TRUE(worker.ok()) << worker.status();
    worker_ = std::make_unique<Subprocess>(*std::move(worker));
    ASSERT_TRUE(cluster_->WorkerListed("lumina0", absl::Seconds(90)))
        << ReadFile(worker_->log_path());
  }

  // Runs a program to completion; returns its exit code (-1: no exit).
  int Run(const std::vector<std::string>& argv, std::string* out) {
    absl::StatusOr<int> rc =
        ::lvs::testing::RunCommand(argv, absl::Seconds(150), out);
    return rc.ok() && WIFEXITED(*rc) ? WEXITSTATUS(*rc) : -1;
  }

  // `lvs ARGS...` against the cluster.
  int Lvs(std::vector<std::string> args, std::string* out) {
    args.insert(args.begin(), {::lvs::testing::CliBinary(),
                               absl::StrCat("--server=", cluster_->address())});
    return Run(args, out);
  }

  // Submits `spec` with `lvs train submit`, follows it with `lvs train
  // watch` and returns the finished job.
  pb::TrainingJob SubmitAndWait(const nlohmann::json& spec,
                                const std::string& file) {
    std::ofstream(file) << spec.dump(1);
    std::string out;
    EXPECT_EQ(Lvs({"train", "submit", "--spec=" + file}, &out), 0) << out;
    const std::string name(absl::StripAsciiWhitespace(out));
    EXPECT_TRUE(absl::StartsWith(name, "trainingJobs/")) << out;
    EXPECT_EQ(Lvs({"train", "watch", name}, &out), 0) << out;
    EXPECT_TRUE(absl::StrContains(
        out,
        absl::StrCat("completed: ", spec["max_steps"].get<int>(), " steps")))
        << out << ReadFile(trainer_->log_path());
    pb::GetTrainingJobRequest get;
    get.set_name(name);
    pb::TrainingJob job;
    grpc::ClientContext ctx;
    cluster_->admin().GetTrainingJob(&ctx, get, &job);
    return job;
  }

  // Generates `r` on lumina0; returns the decoded frames.
  std::vector<uint8_t> Serve(const pb::GenerateVideoRequest& r,
                             int denoising_steps) {
    absl::StatusOr<pb::VideoJob> job = cluster_->Create(r);
    EXPECT_TRUE(job.ok()) << job.status();
    if (!job.ok()) return {};
    absl::StatusOr<pb::VideoJob> done =
        cluster_->WaitFinished(job->name(), absl::Seconds(120));
    EXPECT_TRUE(done.ok()) << done.status();
    if (!done.ok()) return {};
    EXPECT_EQ(done->state(), pb::SUCCEEDED) << done->error().message() << "\n"
                                            << ReadFile(worker_->log_path());
    EXPECT_EQ(done->progress().total_steps(), denoising_steps);
    absl::StatusOr<std::string> mp4 = cluster_->Watch(job->name(), 0);
    EXPECT_TRUE(mp4.ok()) << mp4.status();
    return mp4.ok() ? DecodeFrames(*mp4) : std::vector<uint8_t>();
  }

  // lumina0 as ListWorkers reports it.
  pb::Worker Listed() {
    pb::ListWorkersResponse resp;
    grpc::ClientContext ctx;
    cluster_->admin().ListWorkers(&ctx, pb::ListWorkersRequest(), &resp);
    for (const pb::Worker& w : resp.workers()) {
      if (w.name() == "lumina0") return w;
    }
    return pb::Worker();
  }

  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<Subprocess> worker_;
  std::unique_ptr<Subprocess> trainer_;
  std::string work_;
};

// A fresh VAE like the golden one (same compression) with 8 latent channels.
nlohmann::json VaeSpec(const std::string& data) {
  std::ifstream in(kGolden + "/vae/config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  config["latent_channels"] = 8;
  return {{"model_type", "vae"},
          {"vae_config", config},
          {"records", {data + "/train.jsonl"}},
          {"heldout", {data + "/heldout.jsonl"}},
          {"batch_size", 1},
          {"crop_size", 32},
          {"max_frames", 9},
          {"learning_rate", 2e-3},
          {"warmup_steps", 1},
          {"max_steps", 3},
          {"checkpoint_interval", 2},
          {"seed", 5}};
}

// A fresh DiT with the golden architecture taking 8 latent channels.
nlohmann::json DiTSpec(const std::string& records) {
  absl::StatusOr<nlohmann::json> args =
      io::ReadPickledArgs(kGolden + "/dit/model_args.pth");
  EXPECT_TRUE(args.ok()) << args.status();
  nlohmann::json a = args.ok() ? *args : nlohmann::json::object();
  a["in_channels"] = 8;
  a.erase("out_channels");
  return {{"model", "MultiScaleNextDiT_e2e"},
          {"model_args", a},
          {"tasks",
           {{{"name", "video"},
             {"media_type", "video"},
             {"records", {records}},
             {"global_batch_size", 2},
             {"micro_batch_size", 1},
             {"image_size", 32},
             {"max_frames", 8},
             {"patch", "1x2"},
             {"task_ratio", 1}}}},
          {"learning_rate", 5e-3},
          {"ema_interval", 1},
          {"max_steps", 3},
          {"seed", 3}};
}

TEST_F(TrainServeE2eTest, LeasedVaeAndDiTJobsAreServedAfterReload) {
  ASSERT_NO_FATAL_FAILURE(StartWorker(kGolden + "/dit"));
  auto trainer = Subprocess::Start(
      {LVS_TRAINER_BIN,
       absl::StrCat("--server=127.0.0.1:", cluster_->worker_port()),
       "--name=trainer0", "--work-dir=" + cluster_->dir() + "/train"},
      cluster_->dir() + "/trainer0.log");
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  trainer_ = std::make_unique<Subprocess>(*std::move(trainer));
  const std::vector<uint8_t> before = Serve(VideoRequest(), kGridPoints - 1);

  // Data: a few short clips.
  const std::string data = work_ + "/data";
  std::string out;
  ASSERT_EQ(Run({LVS_SYNTH_BIN, "--out=" + data, "--seed=1", "--train=3",
                 "--heldout=1", "--size=32", "--frames=9", "--fps=8"},
                &out),
            0)
      << out;

  // The leased VAE job: step reports, checkpoints, the final one.
  const pb::TrainingJob vae_job =
      SubmitAndWait(VaeSpec(data), work_ + "/vae_spec.json");
  ASSERT_EQ(vae_job.state(), pb::SUCCEEDED)
      << vae_job.DebugString() << ReadFile(trainer_->log_path());
  EXPECT_EQ(vae_job.spec().model_type(), pb::MODEL_TYPE_VAE);
  EXPECT_EQ(vae_job.last_step().step(), 3);
  EXPECT_EQ(vae_job.last_step().total_steps(), 3);
  EXPECT_TRUE(vae_job.last_step().task_loss().contains("rec"));
  EXPECT_EQ(vae_job.last_checkpoint().step(), 3);
  const std::string vae = vae_job.last_checkpoint().path();
  ASSERT_TRUE(fs::exists(vae + "/config.json")) << vae;
  ASSERT_TRUE(fs::exists(vae + "/diffusion_pytorch_model.safetensors")) << vae;
  bool heldout_logged = false;
  for (absl::string_view line :
       absl::StrSplit(ReadFile(trainer_->log_path()), '\n')) {
    heldout_logged |=
        absl::StrContains(line, R"("event":"training_heldout")") &&
        absl::StrContains(line, R"("job_id":")" + vae_job.name() + "\"") &&
        absl::StrContains(line, R"("psnr_db":)");
  }
  EXPECT_TRUE(heldout_logged) << ReadFile(trainer_->log_path());

  // Latents and caption features with the trained VAE.
  ASSERT_EQ(Run({LVS_EXTRACT_BIN, "--items=" + data + "/train.jsonl",
                 "--out=" + work_ + "/latents", "--vae=" + vae,
                 "--text-encoder=" + kGolden + "/text_encoder",
                 "--image-size=32", "--target-fps=8"},
                &out),
            0)
      << out;

  // The leased DiT job on them.
  const pb::TrainingJob dit_job = SubmitAndWait(
      DiTSpec(work_ + "/latents/records.jsonl"), work_ + "/dit_spec.json");
  ASSERT_EQ(dit_job.state(), pb::SUCCEEDED)
      << dit_job.DebugString() << ReadFile(trainer_->log_path());
  const std::string dit = dit_job.last_checkpoint().path();
  ASSERT_FALSE(dit.empty());

  // What the trained pair makes, run in this process.
  pipeline::PipelineOptions po;
  po.dit_dir = dit;
  po.text_encoder_dir = kGolden + "/text_encoder";
  po.vae_dir = vae;
  auto pipe = pipeline::Pipeline::Create(po);
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  const std::vector<uint8_t> trained = OfflineFrames(**pipe, VideoRequest());
  ASSERT_EQ(trained.size(), 9u * 64 * 64 * 3);

  // The DiT alone does not fit the golden VAE (16 channels): refused, and
  // the worker keeps serving what it served.
  EXPECT_EQ(Lvs({"workers", "reload", "--checkpoint=" + dit}, &out), 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "latent channels")) << out;
  EXPECT_EQ(Listed().capabilities().model_version(), kGolden + "/dit");

  // The pair: the worker serves the trained weights.
  ASSERT_EQ(
      Lvs({"workers", "reload", "--checkpoint=" + dit, "--vae=" + vae}, &out),
      0)
      << out << ReadFile(worker_->log_path());
  const std::string version = absl::StrCat(dit, " + vae ", vae);
  EXPECT_TRUE(absl::StrContains(out, "reloaded: " + version)) << out;
  EXPECT_EQ(Listed().capabilities().model_version(), version);
  const std::vector<uint8_t> after = Serve(VideoRequest(), kGridPoints - 1);
  ASSERT_EQ(after.size(), before.size());
  RecordProperty("before_vs_after", std::to_string(MeanAbsDiff(before, after)));
  EXPECT_EQ(MeanAbsDiff(after, trained), 0)
      << "vs before: " << MeanAbsDiff(after, before);
  EXPECT_GT(MeanAbsDiff(after, before), 1.0);
}

TEST_F(TrainServeE2eTest, WorkerDefaultsToTheCheckpointsSampleConfig) {
  // The golden DiT with its own generation defaults: 3 grid points, the
  // 1x2 patches, guidance 2.
  const std::string dit = work_ + "/dit";
  fs::create_directories(dit);
  for (const char* f :
       {"model_args.pth", "consolidated.00-of-01.safetensors", "config.json"}) {
    fs::copy_file(kGolden + "/dit/" + f, dit + "/" + f);
  }
  const nlohmann::json own = {{"P", "1x2"},      {"step", 3},  {"ts", 3.0},
                              {"renorm", -1},    {"cfg", 2.0}, {"motion", 5.0},
                              {"negMotion", 2.0}};
  std::ofstream(dit + "/sample_config.json") << own.dump();
  absl::StatusOr<std::optional<sampler::SampleConfig>> config =
      sampler::CheckpointSampleConfig(dit);
  ASSERT_TRUE(config.ok() && config->has_value()) << config.status();
  (*config)->name = "checkpoint";  // As the worker names it.

  ASSERT_NO_FATAL_FAILURE(StartWorker(dit));
  const pb::Worker listed = Listed();
  ASSERT_EQ(listed.capabilities().model_limits_size(), 1)
      << listed.DebugString();
  const pb::ModelLimits& limits = listed.capabilities().model_limits(0);
  EXPECT_EQ(limits.default_sample_config(), "checkpoint");
  EXPECT_EQ(limits.default_steps(), 3);

  // No sample config and no steps: the checkpoint's config runs.
  pb::GenerateVideoRequest r = VideoRequest();
  r.clear_sample_config();
  r.clear_steps();
  const std::vector<uint8_t> served = Serve(r, 2);

  pipeline::PipelineOptions po;
  po.dit_dir = dit;
  po.text_encoder_dir = kGolden + "/text_encoder";
  po.vae_dir = kGolden + "/vae";
  auto pipe = pipeline::Pipeline::Create(po);
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  const std::vector<uint8_t> expected = OfflineFrames(**pipe, r, **config);
  ASSERT_EQ(served.size(), 9u * 64 * 64 * 3);
  EXPECT_EQ(MeanAbsDiff(served, expected), 0);
  // ... which is not the named default's video.
  r.set_sample_config("f24F96R960");
  r.set_steps(3);
  EXPECT_GT(MeanAbsDiff(served, OfflineFrames(**pipe, r)), 0);

  // The name works too.
  r.set_sample_config("checkpoint");
  r.clear_steps();
  EXPECT_EQ(MeanAbsDiff(Serve(r, 2), expected), 0);
}

}  // namespace
}  // namespace lvs::trainer
