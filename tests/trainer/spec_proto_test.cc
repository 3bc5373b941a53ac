// Training job specs from the API to the trainers' specs: the VAE fields,
// the DiT's model_args, defaults of absent fields, errors naming the field,
// and `lvs train template --model-type vae` submitted as it is printed.
#include "trainer/spec_proto.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include "absl/strings/match.h"
#include "google/protobuf/util/json_util.h"
#include "tests/worker/subprocess.h"

namespace lvs::trainer {
namespace {

namespace pb = ::lumina::video::v1;

pb::TrainingJobSpec FromJson(const std::string& json) {
  pb::TrainingJobSpec spec;
  const auto s = google::protobuf::util::JsonStringToMessage(json, &spec);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return spec;
}

TEST(SpecProtoTest, VaeJobsCarryTheirFieldsAndDefaults) {
  const pb::TrainingJobSpec p = FromJson(R"({
    "model_type": "MODEL_TYPE_VAE",
    "records": ["a.jsonl", "b.jsonl"], "heldout": ["h.jsonl"],
    "vae_config": {"_class_name": "AutoencoderKLCogVideoX",
                   "latent_channels": 8, "norm_eps": 1e-06,
                   "block_out_channels": [16, 32], "latents_mean": null,
                   "use_quant_conv": false},
    "crop_size": 32, "max_frames": 9, "learning_rate": 0.002,
    "kl_weight": 1e-05, "max_steps": 7, "checkpoint_interval": 2,
    "seed": 4, "ema_decay": 0.5})");
  EXPECT_TRUE(IsVaeJob(p));
  absl::StatusOr<VaeTrainSpec> s = VaeTrainSpecFromProto(p);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->records, (std::vector<std::string>{"a.jsonl", "b.jsonl"}));
  EXPECT_EQ(s->heldout, (std::vector<std::string>{"h.jsonl"}));
  // Integral numbers come back as JSON integers, the rest unchanged.
  EXPECT_TRUE(s->vae_config["latent_channels"].is_number_integer());
  EXPECT_EQ(s->vae_config["latent_channels"], 8);
  EXPECT_EQ(s->vae_config["block_out_channels"], nlohmann::json({16, 32}));
  EXPECT_DOUBLE_EQ(s->vae_config["norm_eps"].get<double>(), 1e-06);
  EXPECT_TRUE(s->vae_config["latents_mean"].is_null());
  EXPECT_EQ(s->vae_config["use_quant_conv"], false);
  EXPECT_EQ(s->crop_size, 32);
  EXPECT_EQ(s->max_frames, 9);
  EXPECT_DOUBLE_EQ(s->learning_rate, 0.002);
  EXPECT_DOUBLE_EQ(s->kl_weight, 1e-05);
  EXPECT_EQ(s->max_steps, 7);
  EXPECT_EQ(s->checkpoint_interval, 2);
  EXPECT_EQ(s->seed, 4);
  EXPECT_DOUBLE_EQ(s->ema_decay, 0.5);
  // Absent: the VAE trainer's defaults.
  const VaeTrainSpec defaults;
  EXPECT_EQ(s->batch_size, defaults.batch_size);
  EXPECT_EQ(s->warmup_steps, defaults.warmup_steps);
  EXPECT_DOUBLE_EQ(s->weight_decay, defaults.weight_decay);
  EXPECT_DOUBLE_EQ(s->l1_weight, defaults.l1_weight);
  EXPECT_DOUBLE_EQ(s->mse_weight, defaults.mse_weight);
  EXPECT_DOUBLE_EQ(s->grad_clip, defaults.grad_clip);
  // Not a DiT job.
  absl::StatusOr<TrainSpec> dit = TrainSpecFromProto(p);
  EXPECT_EQ(dit.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(dit.status().message(), "model_type: "))
      << dit.status();
}

TEST(SpecProtoTest, BadVaeJobsNameTheField) {
  pb::TrainingJobSpec p;
  p.set_model_type(pb::MODEL_TYPE_VAE);
  p.set_init_from("/vae");
  p.set_learning_rate(1e-3);
  p.set_max_steps(3);
  absl::StatusOr<VaeTrainSpec> s = VaeTrainSpecFromProto(p);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(s.status().message(), "records: "))
      << s.status();
  p.add_records("a.jsonl");
  p.set_max_frames(8);
  s = VaeTrainSpecFromProto(p);
  EXPECT_TRUE(absl::StartsWith(s.status().message(), "max_frames: "))
      << s.status();
  p.set_max_frames(0);
  p.add_tasks()->set_name("v");
  s = VaeTrainSpecFromProto(p);
  EXPECT_TRUE(absl::StartsWith(s.status().message(), "tasks: ")) << s.status();
  p.clear_tasks();
  ASSERT_TRUE(VaeTrainSpecFromProto(p).ok());
  p.set_model_type(pb::MODEL_TYPE_DIT);
  EXPECT_TRUE(absl::StartsWith(VaeTrainSpecFromProto(p).status().message(),
                               "model_type: "));
}

TEST(SpecProtoTest, DiTJobsTakeModelArgs) {
  const pb::TrainingJobSpec p = FromJson(R"({
    "model": "MultiScaleNextDiT_small",
    "model_args": {"dim": 64, "n_layers": 2, "patch_sizes": [2, 4],
                   "ffn_dim_multiplier": null, "norm_eps": 1e-05},
    "learning_rate": 0.001, "max_steps": 2,
    "tasks": [{"name": "v", "media_type": "MEDIA_TYPE_VIDEO",
               "records": ["r.jsonl"], "global_batch_size": 2,
               "micro_batch_size": 1, "max_frames": 8, "patch": "1x2",
               "task_ratio": 1}]})");
  EXPECT_FALSE(IsVaeJob(p));
  absl::StatusOr<TrainSpec> s = TrainSpecFromProto(p);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->model, "MultiScaleNextDiT_small");
  EXPECT_EQ(s->model_args["dim"], 64);
  EXPECT_TRUE(s->model_args["dim"].is_number_integer());
  EXPECT_EQ(s->model_args["patch_sizes"], nlohmann::json({2, 4}));
  EXPECT_TRUE(s->model_args["ffn_dim_multiplier"].is_null());
  EXPECT_EQ(s->tasks.size(), 1u);
  EXPECT_EQ(VaeTrainSpecFromProto(p).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// What `lvs train template --model-type vae` prints converts to a valid
// VAE spec once the model_type is spelled as the API wants (`lvs train
// submit` does that).
TEST(SpecProtoTest, TheVaeTemplateIsAValidLeasedJob) {
  std::string out;
  absl::StatusOr<int> rc = ::lvs::testing::RunCommand(
      {LVS_CLI_BIN, "train", "template", "--model-type", "vae"},
      absl::Seconds(30), &out);
  ASSERT_TRUE(rc.ok() && WIFEXITED(*rc) && WEXITSTATUS(*rc) == 0) << out;
  nlohmann::json json = nlohmann::json::parse(out);
  EXPECT_EQ(json["model_type"], "vae");
  json["model_type"] = "MODEL_TYPE_VAE";
  absl::StatusOr<VaeTrainSpec> s = VaeTrainSpecFromProto(FromJson(json.dump()));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->vae_config["latent_channels"], 8);
  // The same text is a local-mode spec.
  json["model_type"] = "vae";
  EXPECT_TRUE(VaeTrainSpecFromJson(json).ok());
  rc = ::lvs::testing::RunCommand(
      {LVS_CLI_BIN, "train", "template", "--model-type", "gan"},
      absl::Seconds(30), &out);
  ASSERT_TRUE(rc.ok() && WIFEXITED(*rc)) << out;
  EXPECT_NE(WEXITSTATUS(*rc), 0) << out;
}

}  // namespace
}  // namespace lvs::trainer
