// Caption features: lvs-extract --text-encoder caches, per item, the real
// tokens of the pipeline's system prompt + prompt encoded by the tiny golden
// Gemma-2 (equal to a direct encode and to the rows the pipeline's padded
// prompt/negative batch gives), writes system_prompt.safetensors, reports
// items without a prompt and refuses to resume with the other caption
// setting; the trainer steps on those records; the dataset encodes records
// without cached features on the fly to the same values; bad text_encoder
// or vae settings are INVALID_ARGUMENT naming the field.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "model/dit/dit.h"
#include "model/io/torch_tensors.h"
#include "model/pipeline/caption_encoder.h"
#include "model/pipeline/pipeline.h"
#include "tests/trainer/synthetic_clips.h"
#include "tests/trainer/trainer_test_util.h"
#include "tools/lvs_extract/item_list.h"
#include "trainer/checkpoint.h"
#include "trainer/latent_dataset.h"
#include "trainer/model_args_writer.h"
#include "trainer/trainer.h"

namespace lvs::tools {
namespace {

using pipeline::CaptionEncoder;

const char kTextEncoder[] = LVS_GOLDEN_DIR "/text_encoder";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// Runs lvs-extract on `dir`/items.json into `dir`/`out` with `extra` flags;
// returns the exit status, the log in `log`.
int RunExtract(const std::string& dir, const std::string& out,
               const std::string& extra, std::string* log) {
  const std::string cmd = absl::StrCat(
      LVS_BINARY_DIR, "/tools/lvs_extract/lvs-extract --items=", dir,
      "/items.json --out=", dir, "/", out, " --vae=", LVS_GOLDEN_DIR,
      "/vae --image-size=64 --target-fps=8 --chunk-frames=8 ", extra, " 2>",
      dir, "/log.txt");
  const int status = std::system(cmd.c_str());
  *log = ReadFile(dir + "/log.txt");
  return WEXITSTATUS(status);
}

// The tiny DiT of the trainer tests with captions as wide as the tiny
// Gemma-2 (48), written as a checkpoint into `dir`.
void WriteCheckpointFor48WideCaptions(const std::string& dir) {
  std::filesystem::create_directories(dir);
  nlohmann::json args = trainer::testing::TinyModelArgs();
  args["cap_feat_dim"] = 48;
  dit::DiTConfig config = dit::DiTConfigFromArgs(args, "tiny").value();
  torch::manual_seed(3);
  dit::MultiScaleNextDiT model(config);
  io::TensorMap weights;
  for (const auto& p : model->named_parameters()) weights[p.key()] = p.value();
  ASSERT_TRUE(
      io::SaveSafetensors(dir + "/" + trainer::kModelFile, weights).ok());
  ASSERT_TRUE(
      trainer::WriteModelArgs(dir + "/" + trainer::kModelArgsFile, args).ok());
}

trainer::TrainSpec SpecFor(const std::string& records,
                           const std::string& init) {
  trainer::TrainSpec spec;
  spec.init_from = init;
  spec.max_steps = 2;
  spec.seed = 5;
  spec.caption_dropout = 0.5;  // Both cached kinds are read.
  trainer::TaskSpec video;
  video.name = "V-FP1";
  video.records = {records};
  video.global_batch_size = 2;
  video.micro_batch_size = 1;
  video.max_frames = 8;
  video.patch_size = 2;
  video.f_patch_size = 1;
  spec.tasks.push_back(video);
  return spec;
}

// One extraction with caption features shared by the tests.
class CaptionCacheTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);
    dir_ = new std::string(trainer::testing::TempDir("caption-cache"));
    const std::string& d = *dir_;
    using trainer::testing::WriteShapesClip;
    ASSERT_TRUE(WriteShapesClip(d + "/a.mp4", 96, 64, 18, 8, 1.5).ok());
    ASSERT_TRUE(WriteShapesClip(d + "/b.mp4", 64, 96, 18, 8, 2.5).ok());
    {
      std::ofstream items(d + "/items.json");
      items << R"([{"path": "a.mp4", "prompt": "red square and blue disc"},
                   {"path": "b.mp4", "prompt": "shapes drifting upward"},
                   {"path": "a.mp4", "title": "no prompt here"}])";
    }
    // About 14 kB per item (latent + features): one shard each.
    log_ = new std::string;
    status_ = RunExtract(
        d, "out",
        absl::StrCat("--shard-max-bytes=20000 --text-encoder=", kTextEncoder),
        log_);
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete log_;
  }

  static std::string* dir_;
  static std::string* log_;
  static int status_;
};
std::string* CaptionCacheTest::dir_ = nullptr;
std::string* CaptionCacheTest::log_ = nullptr;
int CaptionCacheTest::status_ = -1;

TEST_F(CaptionCacheTest, CachesThePipelinesCaptionFeatures) {
  const std::string& d = *dir_;
  // The item without a prompt is a failure with its reason.
  EXPECT_EQ(status_, 1) << *log_;
  EXPECT_TRUE(absl::StrContains(*log_, "summary: 2 done, 0 skipped, 1 failed"))
      << *log_;
  EXPECT_TRUE(absl::StrContains(*log_, "no string \"prompt\" field")) << *log_;

  auto records = ReadItems(d + "/out/records.jsonl").value();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_NE(records[0]["shard"], records[1]["shard"]);
  auto encoder = CaptionEncoder::Create(kTextEncoder).value();
  EXPECT_EQ(encoder->hidden_size(), 48);
  // The pipeline's own text path: system prompt + prompt and + "" (the
  // empty negative prompt) in one padded batch.
  auto tokenizer = text_encoder::Tokenizer::Create(
                       absl::StrCat(kTextEncoder, "/tokenizer.model"))
                       .value();
  auto gemma = text_encoder::Gemma2Encoder::Create(kTextEncoder).value();
  torch::NoGradGuard no_grad;
  for (const nlohmann::json& r : records) {
    const int64_t id = r["ori_id"].get<int64_t>();
    ASSERT_EQ(r["cap_key"], absl::StrCat("cap.", id));
    io::TensorMap shard =
        io::LoadSafetensors(d + "/out/" + r["shard"].get<std::string>())
            .value();
    ASSERT_EQ(shard.count(r["key"].get<std::string>()), 1u);  // Same shard.
    const torch::Tensor stored = shard.at(r["cap_key"].get<std::string>());
    EXPECT_EQ(stored.scalar_type(), torch::kBFloat16);
    ASSERT_EQ(stored.dim(), 2);
    EXPECT_EQ(stored.size(1), 48);
    EXPECT_EQ(r["cap_tokens"], stored.size(0));
    const std::string prompt = r["prompt"].get<std::string>();
    EXPECT_TRUE(torch::equal(stored, encoder->Encode(prompt).value()));

    auto batch = tokenizer
                     ->Encode({pipeline::kSystemPrompt + prompt,
                               std::string(pipeline::kSystemPrompt)})
                     .value();
    torch::Tensor feats =
        gemma->EncodePromptEmbeds(batch.input_ids, batch.attention_mask)
            .value();
    const int64_t n = batch.attention_mask[0].sum().item<int64_t>();
    ASSERT_EQ(stored.size(0), n);
    EXPECT_TRUE(torch::allclose(stored.to(torch::kFloat32),
                                feats[0].narrow(0, 0, n), 1e-2, 1e-2));
  }

  // Caption dropout: the system prompt alone, as the empty negative prompt.
  const torch::Tensor sys =
      io::LoadSafetensors(d + "/out/system_prompt.safetensors")
          .value()
          .at("cap_feats");
  EXPECT_TRUE(torch::equal(sys, encoder->EncodeSystemPrompt().value()));
  EXPECT_LT(sys.size(0), records[0]["cap_tokens"].get<int64_t>());
}

TEST_F(CaptionCacheTest, ResumesOnlyWithTheSameCaptionSetting) {
  const std::string& d = *dir_;
  std::string log;
  EXPECT_EQ(
      RunExtract(d, "out", absl::StrCat("--text-encoder=", kTextEncoder), &log),
      1);
  EXPECT_TRUE(absl::StrContains(log, "summary: 0 done, 2 skipped, 1 failed"))
      << log;
  EXPECT_EQ(ReadItems(d + "/out/records.jsonl").value().size(), 2u);

  EXPECT_EQ(RunExtract(d, "out", "", &log), 2);
  EXPECT_TRUE(absl::StrContains(log, "items with caption features")) << log;

  // Another system prompt does not match the cached dropout features.
  EXPECT_EQ(RunExtract(d, "out",
                       absl::StrCat("--text-encoder=", kTextEncoder,
                                    " '--system-prompt=Something else: '"),
                       &log),
            2);
  EXPECT_TRUE(absl::StrContains(log, "another system prompt")) << log;

  // Records made without features are not extended silently.
  EXPECT_EQ(RunExtract(d, "plain", "", &log), 0) << log;
  EXPECT_EQ(RunExtract(d, "plain",
                       absl::StrCat("--text-encoder=", kTextEncoder), &log),
            2);
  EXPECT_TRUE(absl::StrContains(log, "without caption features")) << log;
  EXPECT_FALSE(std::filesystem::exists(d + "/plain/system_prompt.safetensors"));
}

TEST_F(CaptionCacheTest, TrainerStepsOnCachedFeatures) {
  const std::string& d = *dir_;
  WriteCheckpointFor48WideCaptions(d + "/init48");
  auto tr = trainer::Trainer::Create(
      SpecFor(d + "/out/records.jsonl", d + "/init48"));
  ASSERT_TRUE(tr.ok()) << tr.status();
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<trainer::StepStats> s = (*tr)->Step();
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_TRUE(std::isfinite(s->loss));
    EXPECT_GT(s->grad_norm, 0);
  }
}

// Writes the records of `out` without cap_key into `dir`/`name`/, with shard
// paths back to `out`; no system_prompt.safetensors there.
std::string WriteRecordsWithoutFeatures(const std::string& dir,
                                        const std::string& name) {
  std::filesystem::create_directories(dir + "/" + name);
  std::vector<nlohmann::json> records =
      ReadItems(dir + "/out/records.jsonl").value();
  for (nlohmann::json& r : records) {
    r.erase("cap_key");
    r["shard"] = "../out/" + r["shard"].get<std::string>();
  }
  const std::string path = dir + "/" + name + "/records.jsonl";
  EXPECT_TRUE(WriteJsonl(path, records).ok());
  return path;
}

TEST_F(CaptionCacheTest, DatasetEncodesOnTheFlyToTheCachedValues) {
  const std::string& d = *dir_;
  const std::string plain = WriteRecordsWithoutFeatures(d, "fly");
  // Without an encoder the records are refused, naming lvs-extract.
  auto refused = trainer::LatentDataset::Open({plain}, {}, "tasks[0].records");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);

  trainer::LatentDatasetOptions o;
  o.text_encoder = kTextEncoder;
  auto fly = trainer::LatentDataset::Open({plain}, o, "tasks[0].records");
  ASSERT_TRUE(fly.ok()) << fly.status();
  auto cached =
      trainer::LatentDataset::Open({d + "/out/records.jsonl"}, {}, "cached")
          .value();
  ASSERT_EQ((*fly)->size(), cached->size());
  for (size_t i = 0; i < cached->size(); ++i) {
    EXPECT_EQ((*fly)->item(i).prompt, cached->item(i).prompt);
    const torch::Tensor want = cached->Caption(i, false).value();
    const torch::Tensor got = (*fly)->Caption(i, false).value();
    EXPECT_EQ(got.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::equal(got, want)) << "item " << i;
    EXPECT_TRUE(torch::equal((*fly)->Caption(i, true).value(),
                             cached->Caption(i, true).value()));
  }

  // The trainer passes spec.text_encoder through.
  trainer::TrainSpec spec = SpecFor(plain, d + "/init-fly");
  WriteCheckpointFor48WideCaptions(d + "/init-fly");
  spec.text_encoder = kTextEncoder;
  auto tr = trainer::Trainer::Create(spec);
  ASSERT_TRUE(tr.ok()) << tr.status();
  absl::StatusOr<trainer::StepStats> s = (*tr)->Step();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(std::isfinite(s->loss));
}

TEST_F(CaptionCacheTest, BadSettingsNameTheirField) {
  const std::string& d = *dir_;
  const std::string plain = WriteRecordsWithoutFeatures(d, "bad");
  trainer::LatentDatasetOptions o;
  for (const std::string& te :
       {d + "/missing", std::string(LVS_GOLDEN_DIR "/vae"), d + "/out"}) {
    o.text_encoder = te;
    auto ds = trainer::LatentDataset::Open({plain}, o, "tasks[0].records");
    ASSERT_FALSE(ds.ok()) << te;
    EXPECT_EQ(ds.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(ds.status().message(), "text_encoder: "))
        << ds.status();
  }

  // A record with neither cap_key nor prompt cannot be encoded.
  std::vector<nlohmann::json> records = ReadItems(plain).value();
  records[1].erase("prompt");
  ASSERT_TRUE(WriteJsonl(plain, records).ok());
  o.text_encoder = kTextEncoder;
  auto ds = trainer::LatentDataset::Open({plain}, o, "tasks[0].records");
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(ds.status().message(), "tasks[0].records[0]"))
      << ds.status();
  EXPECT_TRUE(absl::StrContains(ds.status().message(), "line 2"))
      << ds.status();
  EXPECT_TRUE(absl::StrContains(ds.status().message(), "prompt"))
      << ds.status();

  trainer::LatentDatasetOptions vae;
  vae.vae = LVS_GOLDEN_DIR "/vae";
  ds = trainer::LatentDataset::Open({d + "/out/records.jsonl"}, vae, "x");
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(ds.status().message(), "vae: ")) << ds.status();
}

}  // namespace
}  // namespace lvs::tools
