// Parsing and validation of training specs.
#include "trainer/train_spec.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "model/dit/patch_comb.h"

namespace lvs::trainer {
namespace {

absl::Status FieldError(const std::string& field, const std::string& rule) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", rule));
}

// Checks "uniform", "lognorm" and "uniform_a_b" with 0 <= a < b <= 1.
absl::Status CheckSnrType(const std::string& field, const std::string& s) {
  if (s == "uniform" || s == "lognorm") return absl::OkStatus();
  std::vector<std::string> parts = absl::StrSplit(s, '_');
  double a = 0, b = 0;
  if (parts.size() == 3 && parts[0] == "uniform" &&
      absl::SimpleAtod(parts[1], &a) && absl::SimpleAtod(parts[2], &b) &&
      a >= 0 && a < b && b <= 1) {
    return absl::OkStatus();
  }
  return FieldError(field, absl::StrCat("unknown snr_type \"", s,
                                        "\" (uniform, uniform_a_b with 0 <= "
                                        "a < b <= 1, or lognorm)"));
}

absl::Status CheckTask(const TrainSpec& spec, size_t i) {
  const TaskSpec& t = spec.tasks[i];
  const std::string f = absl::StrCat("tasks[", i, "]");
  if (t.records.empty()) {
    return FieldError(f + ".records", "at least one record file is needed");
  }
  for (size_t r = 0; r < t.records.size(); ++r) {
    if (t.records[r].empty()) {
      return FieldError(absl::StrCat(f, ".records[", r, "]"), "empty path");
    }
  }
  if (t.global_batch_size <= 0) {
    return FieldError(f + ".global_batch_size", "must be positive");
  }
  if (t.micro_batch_size <= 0) {
    return FieldError(f + ".micro_batch_size", "must be positive");
  }
  if (t.global_batch_size % spec.data_parallel != 0) {
    return FieldError(
        f + ".global_batch_size",
        absl::StrCat(t.global_batch_size, " is not divisible by data_parallel ",
                     spec.data_parallel));
  }
  const int64_t local = t.global_batch_size / spec.data_parallel;
  if (local % t.micro_batch_size != 0) {
    return FieldError(
        f + ".micro_batch_size",
        absl::StrCat("the local batch ", local, " is not a multiple of ",
                     t.micro_batch_size));
  }
  if (t.media_type == MediaType::kVideo && t.max_frames < 4) {
    return FieldError(f + ".max_frames", "a video task needs at least 4");
  }
  if (absl::Status s = CheckSnrType(f + ".snr_type", t.snr_type); !s.ok()) {
    return s;
  }
  if (!(t.time_shift > 0)) return FieldError(f + ".time_shift", "must be > 0");
  if (t.task_ratio <= 0) return FieldError(f + ".task_ratio", "must be > 0");
  if (t.patch_size <= 0 || t.f_patch_size <= 0) {
    return FieldError(f + ".patch", "patch sizes must be positive");
  }
  return absl::OkStatus();
}

// The one spec dialect: "fp32" and "video" as written, and the proto enum
// names of `lvs train submit` ("PRECISION_FP32", "MEDIA_TYPE_VIDEO") too.
std::string ShortEnumName(const std::string& value, const std::string& prefix) {
  if (value.rfind(prefix, 0) != 0) return value;
  return absl::AsciiStrToLower(value.substr(prefix.size()));
}

bool InUnit(double p) { return p >= 0 && p <= 1; }

}  // namespace

absl::Status ParsePatch(const std::string& text, int64_t* patch_size,
                        int64_t* f_patch_size) {
  absl::StatusOr<dit::PatchComb> p = dit::ParsePatchComb(text);
  if (!p.ok()) return p.status();
  *patch_size = p->patch;
  *f_patch_size = p->f_patch;
  return absl::OkStatus();
}

int64_t MaxTaskRatio(const TrainSpec& spec) {
  int64_t m = 1;
  for (const TaskSpec& t : spec.tasks) m = std::max(m, t.task_ratio);
  return m;
}

bool TaskRunsAt(const TrainSpec& spec, size_t task, int64_t step) {
  return step % MaxTaskRatio(spec) < spec.tasks[task].task_ratio;
}

absl::Status ValidateTrainSpec(const TrainSpec& spec) {
  if (spec.tasks.empty()) return FieldError("tasks", "at least one task");
  if (spec.model.empty() == spec.init_from.empty()) {
    return FieldError("model", "set exactly one of model and init_from");
  }
  if (!(spec.learning_rate > 0)) {
    return FieldError("learning_rate", "must be > 0");
  }
  if (spec.max_steps <= 0) return FieldError("max_steps", "must be positive");
  if (spec.checkpoint_interval < 0) {
    return FieldError("checkpoint_interval", "must be >= 0");
  }
  if (!(spec.grad_clip > 0)) return FieldError("grad_clip", "must be > 0");
  if (!InUnit(spec.ema_decay)) {
    return FieldError("ema_decay", "must be in [0, 1]");
  }
  if (spec.ema_interval <= 0) {
    return FieldError("ema_interval", "must be positive");
  }
  if (!InUnit(spec.caption_dropout)) {
    return FieldError("caption_dropout", "must be in [0, 1]");
  }
  if (spec.vd_weight < 0) return FieldError("vd_weight", "must be >= 0");
  if (spec.data_parallel <= 0) {
    return FieldError("data_parallel", "must be positive");
  }
  for (size_t i = 0; i < spec.tasks.size(); ++i) {
    if (absl::Status s = CheckTask(spec, i); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<TrainSpec> TrainSpecFromJson(const nlohmann::json& json) {
  TrainSpec spec;
  if (!json.is_object()) return FieldError("spec", "not a JSON object");
  try {
    auto get = [&](const nlohmann::json& j, const char* key, auto* out) {
      if (j.contains(key) && !j[key].is_null()) j[key].get_to(*out);
    };
    std::string model_type = "dit";
    get(json, "model_type", &model_type);
    model_type = ShortEnumName(model_type, "MODEL_TYPE_");
    if (model_type != "dit" && model_type != "unspecified") {
      return FieldError("model_type",
                        absl::StrCat("\"", model_type,
                                     "\" is not a DiT spec (\"dit\"; VAE "
                                     "specs are read by the VAE trainer)"));
    }
    get(json, "model", &spec.model);
    get(json, "init_from", &spec.init_from);
    if (json.contains("model_args") && !json["model_args"].is_null()) {
      if (!json["model_args"].is_object()) {
        return FieldError("model_args", "must be a JSON object");
      }
      spec.model_args = json["model_args"];
    }
    get(json, "learning_rate", &spec.learning_rate);
    get(json, "max_steps", &spec.max_steps);
    get(json, "checkpoint_interval", &spec.checkpoint_interval);
    get(json, "seed", &spec.seed);
    get(json, "grad_clip", &spec.grad_clip);
    get(json, "ema_decay", &spec.ema_decay);
    get(json, "ema_interval", &spec.ema_interval);
    get(json, "caption_dropout", &spec.caption_dropout);
    get(json, "vd_weight", &spec.vd_weight);
    get(json, "data_parallel", &spec.data_parallel);
    get(json, "text_encoder", &spec.text_encoder);
    get(json, "vae", &spec.vae);
    std::string precision = "fp32";
    get(json, "precision", &precision);
    precision = ShortEnumName(precision, "PRECISION_");
    if (precision != "fp32" && precision != "bf16") {
      return FieldError("precision", "must be \"fp32\" or \"bf16\"");
    }
    spec.precision = precision == "bf16" ? TrainPrecision::kBFloat16
                                         : TrainPrecision::kFloat32;
    const nlohmann::json& tasks = json.value("tasks", nlohmann::json::array());
    for (size_t i = 0; i < tasks.size(); ++i) {
      const nlohmann::json& j = tasks[i];
      TaskSpec t;
      get(j, "name", &t.name);
      std::string media = "video", patch = "1x2";
      get(j, "media_type", &media);
      media = ShortEnumName(media, "MEDIA_TYPE_");
      if (media != "video" && media != "image") {
        return FieldError(absl::StrCat("tasks[", i, "].media_type"),
                          "must be \"image\" or \"video\"");
      }
      t.media_type = media == "image" ? MediaType::kImage : MediaType::kVideo;
      get(j, "records", &t.records);
      get(j, "global_batch_size", &t.global_batch_size);
      get(j, "micro_batch_size", &t.micro_batch_size);
      get(j, "max_frames", &t.max_frames);
      get(j, "snr_type", &t.snr_type);
      get(j, "time_shift", &t.time_shift);
      get(j, "task_ratio", &t.task_ratio);
      get(j, "patch", &patch);
      if (absl::Status s = ParsePatch(patch, &t.patch_size, &t.f_patch_size);
          !s.ok()) {
        return FieldError(absl::StrCat("tasks[", i, "].patch"),
                          std::string(s.message()));
      }
      spec.tasks.push_back(std::move(t));
    }
  } catch (const nlohmann::json::exception& e) {
    return FieldError("spec", absl::StrCat("wrong JSON type: ", e.what()));
  }
  if (absl::Status s = ValidateTrainSpec(spec); !s.ok()) return s;
  return spec;
}

}  // namespace lvs::trainer
