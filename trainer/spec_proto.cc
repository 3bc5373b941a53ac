// API training specs to the trainers' specs.
#include "trainer/spec_proto.h"

#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace lvs::trainer {
namespace v1 = ::lumina::video::v1;
namespace {

nlohmann::json ValueToJson(const google::protobuf::Value& v) {
  switch (v.kind_case()) {
    case google::protobuf::Value::kNumberValue: {
      const double d = v.number_value();
      if (std::isfinite(d) && d == std::trunc(d) &&
          std::abs(d) < 9007199254740992.0) {  // 2^53: exact in a double.
        return static_cast<int64_t>(d);
      }
      return d;
    }
    case google::protobuf::Value::kStringValue:
      return v.string_value();
    case google::protobuf::Value::kBoolValue:
      return v.bool_value();
    case google::protobuf::Value::kStructValue:
      return StructToJson(v.struct_value());
    case google::protobuf::Value::kListValue: {
      nlohmann::json list = nlohmann::json::array();
      for (const google::protobuf::Value& e : v.list_value().values()) {
        list.push_back(ValueToJson(e));
      }
      return list;
    }
    default:
      return nullptr;
  }
}

}  // namespace

nlohmann::json StructToJson(const google::protobuf::Struct& s) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : s.fields()) out[key] = ValueToJson(value);
  return out;
}

bool IsVaeJob(const v1::TrainingJobSpec& p) {
  return p.model_type() == v1::MODEL_TYPE_VAE;
}

absl::StatusOr<TrainSpec> TrainSpecFromProto(const v1::TrainingJobSpec& p) {
  if (p.model_type() != v1::MODEL_TYPE_UNSPECIFIED &&
      p.model_type() != v1::MODEL_TYPE_DIT) {
    return absl::InvalidArgumentError(
        absl::StrCat("model_type: ", v1::ModelType_Name(p.model_type()),
                     " is not a DiT job"));
  }
  TrainSpec s;
  s.model = p.model();
  if (p.has_model_args()) s.model_args = StructToJson(p.model_args());
  s.init_from = p.init_from();
  s.learning_rate = p.learning_rate();
  s.max_steps = p.max_steps();
  s.checkpoint_interval = p.checkpoint_interval();
  s.seed = p.seed();
  if (p.grad_clip() > 0) s.grad_clip = p.grad_clip();
  if (p.ema_decay() > 0) s.ema_decay = p.ema_decay();
  if (p.ema_interval() > 0) s.ema_interval = p.ema_interval();
  if (p.caption_dropout() > 0) s.caption_dropout = p.caption_dropout();
  s.vd_weight = p.vd_weight();
  s.data_parallel = p.data_parallel() > 0 ? p.data_parallel() : 1;
  s.precision = p.precision() == v1::PRECISION_BF16 ? TrainPrecision::kBFloat16
                                                    : TrainPrecision::kFloat32;
  s.text_encoder = p.text_encoder();
  s.vae = p.vae();
  for (int i = 0; i < p.tasks_size(); ++i) {
    const v1::TrainingTask& t = p.tasks(i);
    TaskSpec task;
    task.name = t.name();
    task.media_type = t.media_type() == v1::MEDIA_TYPE_IMAGE
                          ? MediaType::kImage
                          : MediaType::kVideo;
    task.records.assign(t.records().begin(), t.records().end());
    task.global_batch_size = t.global_batch_size();
    task.micro_batch_size = t.micro_batch_size();
    task.max_frames = t.max_frames();
    if (!t.snr_type().empty()) task.snr_type = t.snr_type();
    if (t.time_shift() > 0) task.time_shift = t.time_shift();
    task.task_ratio = t.task_ratio();
    if (absl::Status st =
            ParsePatch(t.patch(), &task.patch_size, &task.f_patch_size);
        !st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tasks[", i, "].patch: ", st.message()));
    }
    s.tasks.push_back(std::move(task));
  }
  if (absl::Status st = ValidateTrainSpec(s); !st.ok()) return st;
  return s;
}

absl::StatusOr<VaeTrainSpec> VaeTrainSpecFromProto(
    const v1::TrainingJobSpec& p) {
  if (!IsVaeJob(p)) {
    return absl::InvalidArgumentError(
        absl::StrCat("model_type: ", v1::ModelType_Name(p.model_type()),
                     " is not a VAE job"));
  }
  VaeTrainSpec s;
  s.records.assign(p.records().begin(), p.records().end());
  s.heldout.assign(p.heldout().begin(), p.heldout().end());
  if (p.has_vae_config()) s.vae_config = StructToJson(p.vae_config());
  s.init_from = p.init_from();
  if (p.batch_size() > 0) s.batch_size = p.batch_size();
  if (p.crop_size() > 0) s.crop_size = p.crop_size();
  if (p.max_frames() > 0) s.max_frames = p.max_frames();
  s.learning_rate = p.learning_rate();
  if (p.weight_decay() > 0) s.weight_decay = p.weight_decay();
  if (p.warmup_steps() > 0) s.warmup_steps = p.warmup_steps();
  if (p.l1_weight() > 0) s.l1_weight = p.l1_weight();
  if (p.mse_weight() > 0) s.mse_weight = p.mse_weight();
  if (p.kl_weight() > 0) s.kl_weight = p.kl_weight();
  if (p.grad_clip() > 0) s.grad_clip = p.grad_clip();
  if (p.ema_decay() > 0) s.ema_decay = p.ema_decay();
  s.max_steps = p.max_steps();
  s.checkpoint_interval = p.checkpoint_interval();
  s.seed = p.seed();
  if (!p.tasks().empty()) {
    return absl::InvalidArgumentError(
        "tasks: a VAE job trains on `records` (clip lists), not tasks");
  }
  if (p.data_parallel() > 1) {
    return absl::InvalidArgumentError(
        "data_parallel: VAE jobs run in one process (0 or 1)");
  }
  if (absl::Status st = ValidateVaeTrainSpec(s); !st.ok()) return st;
  return s;
}

}  // namespace lvs::trainer
