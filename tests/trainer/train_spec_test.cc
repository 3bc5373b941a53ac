// Training specs (parsing, validation naming the field, task schedule) and
// the model_args.pth writer read back by the DiT config loader.
#include "trainer/train_spec.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "model/dit/dit_config.h"
#include "model/io/torch_pickle.h"
#include "trainer/model_args_writer.h"

namespace lvs::trainer {
namespace {

nlohmann::json ValidSpec() {
  return {{"init_from", "/ckpt"},
          {"max_steps", 10},
          {"learning_rate", 1e-3},
          {"tasks",
           {{{"name", "V"},
             {"records", {"/data/records.jsonl"}},
             {"global_batch_size", 4},
             {"micro_batch_size", 2},
             {"max_frames", 8},
             {"patch", "2x2"},
             {"time_shift", 4.0},
             {"task_ratio", 2}},
            {{"name", "I"},
             {"media_type", "image"},
             {"records", {"/data/images.jsonl"}},
             {"global_batch_size", 2},
             {"micro_batch_size", 1},
             {"snr_type", "uniform_0.2_0.8"},
             {"patch", "1x2"}}}}};
}

// `lvs train submit` wrote PRECISION_FP32 / MEDIA_TYPE_VIDEO while
// `lvs-trainer --spec` wanted fp32 / video: both spellings are one dialect.
TEST(TrainSpecTest, AcceptsProtoEnumNames) {
  nlohmann::json j = ValidSpec();
  j["precision"] = "PRECISION_BF16";
  j["tasks"][0]["media_type"] = "MEDIA_TYPE_VIDEO";
  j["tasks"][1]["media_type"] = "MEDIA_TYPE_IMAGE";
  absl::StatusOr<TrainSpec> spec = TrainSpecFromJson(j);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->precision, TrainPrecision::kBFloat16);
  EXPECT_EQ(spec->tasks[0].media_type, MediaType::kVideo);
  EXPECT_EQ(spec->tasks[1].media_type, MediaType::kImage);
  EXPECT_EQ(spec->tasks[1].task_ratio, 1);  // Absent: 1.
}

TEST(TrainSpecTest, ParsesTheTaskFields) {
  absl::StatusOr<TrainSpec> spec = TrainSpecFromJson(ValidSpec());
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->tasks.size(), 2u);
  EXPECT_EQ(spec->tasks[0].patch_size, 2);
  EXPECT_EQ(spec->tasks[0].f_patch_size, 2);
  EXPECT_EQ(spec->tasks[1].media_type, MediaType::kImage);
  EXPECT_EQ(spec->tasks[1].f_patch_size, 1);
  EXPECT_DOUBLE_EQ(spec->grad_clip, 2.0);
  EXPECT_DOUBLE_EQ(spec->ema_decay, 0.99);
  EXPECT_EQ(spec->ema_interval, 10);
  EXPECT_DOUBLE_EQ(spec->caption_dropout, 0.2);
}

TEST(TrainSpecTest, TaskRunsWhereStepModMaxRatioIsBelowItsRatio) {
  TrainSpec spec = TrainSpecFromJson(ValidSpec()).value();
  spec.tasks[1].task_ratio = 1;  // Max ratio 2 (task 0).
  EXPECT_EQ(MaxTaskRatio(spec), 2);
  for (int64_t step = 0; step < 6; ++step) {
    EXPECT_TRUE(TaskRunsAt(spec, 0, step));
    EXPECT_EQ(TaskRunsAt(spec, 1, step), step % 2 == 0) << step;
  }
}

struct BadCase {
  const char* json_pointer;
  nlohmann::json value;
  const char* field;
};

TEST(TrainSpecTest, BadFieldsAreInvalidArgumentNamingTheField) {
  const BadCase cases[] = {
      {"/tasks/0/patch", "2by2", "tasks[0].patch"},
      {"/tasks/1/records", nlohmann::json::array(), "tasks[1].records"},
      {"/tasks/0/global_batch_size", 0, "tasks[0].global_batch_size"},
      {"/tasks/0/micro_batch_size", 3, "tasks[0].micro_batch_size"},
      {"/tasks/1/snr_type", "cosine", "tasks[1].snr_type"},
      {"/tasks/0/time_shift", -1.0, "tasks[0].time_shift"},
      {"/tasks/1/media_type", "audio", "tasks[1].media_type"},
      {"/max_steps", 0, "max_steps"},
      {"/model", "MultiScaleNextDiT_2B_GQA", "model"},
      {"/caption_dropout", 1.5, "caption_dropout"},
      {"/data_parallel", 3, "tasks[0].global_batch_size"},
  };
  for (const BadCase& c : cases) {
    nlohmann::json j = ValidSpec();
    j[nlohmann::json::json_pointer(c.json_pointer)] = c.value;
    absl::StatusOr<TrainSpec> spec = TrainSpecFromJson(j);
    ASSERT_FALSE(spec.ok()) << c.json_pointer;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(spec.status().message(), c.field))
        << c.json_pointer << ": " << spec.status();
  }
}

TEST(ModelArgsWriterTest, DiTConfigLoaderReadsTheWrittenArgs) {
  const nlohmann::json args = {{"model", "tiny"},
                               {"dim", 64},
                               {"n_layers", 2},
                               {"n_heads", 4},
                               {"n_kv_heads", 2},
                               {"multiple_of", 16},
                               {"ffn_dim_multiplier", nullptr},
                               {"norm_eps", 1e-5},
                               {"cap_feat_dim", 32},
                               {"qk_norm", true},
                               {"patch_sizes", {2, 4}},
                               {"f_patch_sizes", {1, 2}},
                               {"rope_theta", 256.0},
                               {"t_scale", 1000.0},
                               {"motion_scale", 20.0},
                               {"lr", 2e-4},
                               {"global_seed", -3}};
  const std::string path = std::string(LVS_BINARY_DIR) +
                           "/tests/trainer/model_args_" +
                           std::to_string(::getpid()) + ".pth";
  std::filesystem::create_directories(
      std::filesystem::path(path).parent_path());
  ASSERT_TRUE(WriteModelArgs(path, args).ok());
  absl::StatusOr<nlohmann::json> back = io::ReadPickledArgs(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ((*back)["global_seed"], -3);
  EXPECT_EQ((*back)["patch_sizes"], nlohmann::json({2, 4}));
  EXPECT_TRUE((*back)["ffn_dim_multiplier"].is_null());
  EXPECT_DOUBLE_EQ((*back)["lr"].get<double>(), 2e-4);
  absl::StatusOr<dit::DiTConfig> config = dit::DiTConfigFromArgs(*back, path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->dim, 64);
  EXPECT_TRUE(config->qk_norm);
  EXPECT_TRUE(config->HasPatch(4, 2));
  EXPECT_FALSE(config->HasPatch(2, 2));
  EXPECT_DOUBLE_EQ(config->rope_theta, 256.0);
  std::filesystem::remove(path);
}

TEST(ModelArgsWriterTest, RejectsNestedObjects) {
  absl::StatusOr<std::string> p =
      PickleNamespace({{"task_config", {{"a", 1}}}});
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(absl::StrContains(p.status().message(), "task_config"));
}

}  // namespace
}  // namespace lvs::trainer
