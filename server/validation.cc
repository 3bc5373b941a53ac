#include "server/validation.h"

#include <cmath>
#include <set>
#include <type_traits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/patch_comb.h"

namespace lvs::server {
namespace {

namespace v1 = ::lumina::video::v1;

class Violations {
 public:
  Violations(google::rpc::BadRequest* out, std::string prefix)
      : out_(out), prefix_(std::move(prefix)) {}

  void Add(const std::string& field, const std::string& description) {
    auto* v = out_->add_field_violations();
    v->set_field(prefix_ + field);
    v->set_description(description);
  }

  // Adds a violation unless lo <= value <= hi.
  void Range(const std::string& field, int64_t value, int64_t lo, int64_t hi) {
    if (value < lo || value > hi) {
      Add(field,
          absl::StrCat("must be between ", lo, " and ", hi, ", got ", value));
    }
  }

 private:
  google::rpc::BadRequest* out_;
  std::string prefix_;
};

bool IsName(const std::string& s, size_t max_len) {
  if (s.empty() || s.size() > max_len) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

void CheckDimension(Violations& v, const std::string& field, int value,
                    int max) {
  if (value <= 0) {
    v.Add(field, "is required and must be positive");
  } else if (value % 32 != 0) {
    v.Add(field, absl::StrCat("must be a multiple of 32, got ", value));
  } else if (value > max) {
    v.Add(field, absl::StrCat("must be at most ", max, ", got ", value));
  }
}

// Checks a schedule: finite non-negative values, switch times in (0, 1]
// strictly increasing.
template <typename Schedule, typename CheckValue>
void CheckSchedule(Violations& v, const std::string& field,
                   const Schedule& schedule, CheckValue check_value) {
  check_value(field + ".initial", schedule.initial());
  float last_t = 0;
  for (int i = 0; i < schedule.switches_size(); ++i) {
    const auto& s = schedule.switches(i);
    const std::string at = absl::StrCat(field, ".switches[", i, "]");
    if (!(s.from_t() > last_t && s.from_t() <= 1)) {
      v.Add(at + ".from_t",
            "must be in (0, 1] and greater than the previous switch's");
    }
    last_t = s.from_t();
    if constexpr (std::is_same_v<Schedule, v1::PatchSchedule>) {
      check_value(at + ".patch", s.patch());
    } else {
      check_value(at + ".value", s.value());
    }
  }
}

void CheckSampleConfig(Violations& v, const v1::SampleConfig& sample) {
  auto value = [&v](const std::string& field, float x) {
    if (!std::isfinite(x) || x < 0) {
      v.Add(field, "must be a finite number >= 0");
    }
  };
  CheckSchedule(v, "sample.patch", sample.patch(),
                [&v](const std::string& field, const std::string& patch) {
                  if (!IsPatchSize(patch)) {
                    v.Add(field,
                          "must be a patch size \"FxP\" such as \"1x2\"");
                  }
                });
  value("sample.time_shift", sample.time_shift());
  value("sample.renorm_cfg", sample.renorm_cfg());
  CheckSchedule(v, "sample.cfg_scale", sample.cfg_scale(), value);
  CheckSchedule(v, "sample.motion_score", sample.motion_score(), value);
  CheckSchedule(v, "sample.negative_motion_score",
                sample.negative_motion_score(), value);
}

void CheckLabels(
    Violations& v, const std::string& field,
    const google::protobuf::Map<std::string, std::string>& labels) {
  if (labels.size() > 16) {
    v.Add(field, absl::StrCat("at most 16 labels, got ", labels.size()));
  }
  for (const auto& [key, value] : labels) {
    if (!IsName(key, 63)) {
      v.Add(absl::StrCat(field, "[", key.substr(0, 63), "]"),
            "keys are 1 to 63 letters, digits, '-', '_' or '.'");
    }
    if (value.size() > 63) {
      v.Add(absl::StrCat(field, "[", key.substr(0, 63), "]"),
            "values are at most 63 bytes");
    }
  }
}

}  // namespace

bool IsPatchSize(const std::string& patch) {
  absl::StatusOr<common::PatchComb> p = common::ParsePatchComb(patch);
  return p.ok() && p->f_patch <= 16 && p->patch <= 16;
}

google::rpc::BadRequest ValidateGenerateRequest(
    const v1::GenerateVideoRequest& r, const AdmissionCaps& caps,
    const std::string& prefix) {
  google::rpc::BadRequest out;
  Violations v(&out, prefix);
  if (r.prompt().empty()) {
    v.Add("prompt", "is required");
  } else if (static_cast<int>(r.prompt().size()) > caps.max_prompt_bytes) {
    v.Add("prompt", absl::StrCat("must be at most ", caps.max_prompt_bytes,
                                 " bytes, got ", r.prompt().size()));
  }
  if (static_cast<int>(r.negative_prompt().size()) > caps.max_prompt_bytes) {
    v.Add("negative_prompt",
          absl::StrCat("must be at most ", caps.max_prompt_bytes,
                       " bytes, got ", r.negative_prompt().size()));
  }
  CheckDimension(v, "width", r.width(), caps.max_width);
  CheckDimension(v, "height", r.height(), caps.max_height);
  v.Range("frames", r.frames(), 1, caps.max_frames);
  v.Range("fps", r.fps(), 0, caps.max_fps);
  if (!r.sample_config().empty() && !IsName(r.sample_config(), 64)) {
    v.Add("sample_config", "must be 1 to 64 letters, digits, '-', '_' or '.'");
  }
  if (r.has_sample()) {
    if (!r.sample_config().empty()) {
      v.Add("sample", "set at most one of sample_config and sample");
    }
    CheckSampleConfig(v, r.sample());
  }
  if (r.steps() != 0) v.Range("steps", r.steps(), 2, caps.max_steps);
  if (r.seed() < 0) v.Add("seed", "must be >= 0 (0 picks a random seed)");
  if (!(r.cache_threshold() >= 0 && r.cache_threshold() <= 1)) {
    v.Add("cache_threshold",
          absl::StrCat("must be in [0, 1] (0: no step caching), got ",
                       r.cache_threshold()));
  }
  if (!v1::Precision_IsValid(r.precision())) {
    v.Add("precision", absl::StrCat("unknown value ", r.precision()));
  }
  if (!v1::Priority_IsValid(r.priority())) {
    v.Add("priority", absl::StrCat("unknown value ", r.priority()));
  }
  CheckLabels(v, "labels", r.labels());
  if (r.model().size() > 128) v.Add("model", "must be at most 128 bytes");
  return out;
}

namespace {

// The tasks of a DiT job.
void CheckTrainingTasks(Violations& v, const v1::TrainingJobSpec& s) {
  if (s.tasks_size() == 0) v.Add("tasks", "at least one task is required");
  std::set<std::string> names;
  for (int i = 0; i < s.tasks_size(); ++i) {
    const v1::TrainingTask& t = s.tasks(i);
    const std::string at = absl::StrCat("tasks[", i, "].");
    if (!IsName(t.name(), 64)) {
      v.Add(at + "name", "must be 1 to 64 letters, digits, '-', '_' or '.'");
    } else if (!names.insert(t.name()).second) {
      v.Add(at + "name", absl::StrCat("duplicate task name ", t.name()));
    }
    if (t.media_type() != v1::MEDIA_TYPE_IMAGE &&
        t.media_type() != v1::MEDIA_TYPE_VIDEO) {
      v.Add(at + "media_type", "must be MEDIA_TYPE_IMAGE or MEDIA_TYPE_VIDEO");
    }
    if (t.records_size() == 0)
      v.Add(at + "records", "at least one record file");
    for (int j = 0; j < t.records_size(); ++j) {
      if (t.records(j).empty()) {
        v.Add(absl::StrCat(at, "records[", j, "]"), "must not be empty");
      }
    }
    if (t.micro_batch_size() <= 0) {
      v.Add(at + "micro_batch_size", "must be positive");
    }
    if (t.global_batch_size() <= 0 ||
        (t.micro_batch_size() > 0 &&
         t.global_batch_size() % t.micro_batch_size() != 0)) {
      v.Add(at + "global_batch_size",
            "must be a positive multiple of micro_batch_size");
    }
    if (t.image_size() <= 0 || t.image_size() % 32 != 0) {
      v.Add(at + "image_size", "must be a positive multiple of 32");
    }
    if (t.media_type() == v1::MEDIA_TYPE_VIDEO && t.max_frames() <= 0) {
      v.Add(at + "max_frames", "must be positive for video tasks");
    }
    if (t.target_fps() < 0) v.Add(at + "target_fps", "must be >= 0");
    const std::string& snr = t.snr_type();
    if (!snr.empty() && snr != "uniform" && snr != "lognorm" &&
        !absl::StartsWith(snr, "uniform_")) {
      v.Add(at + "snr_type", "must be uniform, uniform_a_b or lognorm");
    }
    if (!std::isfinite(t.time_shift()) || t.time_shift() < 0) {
      v.Add(at + "time_shift", "must be a finite number >= 0");
    }
    if (t.task_ratio() <= 0) v.Add(at + "task_ratio", "must be positive");
    if (!IsPatchSize(t.patch())) {
      v.Add(at + "patch", "must be a patch size \"FxP\" such as \"1x2\"");
    }
  }
  if (s.model().empty() == s.init_from().empty()) {
    v.Add("model", "set exactly one of model and init_from");
  }
  if (s.records_size() > 0 || s.heldout_size() > 0) {
    v.Add("records",
          "only VAE jobs take records and heldout (DiT tasks list theirs)");
  }
  if (s.has_vae_config()) v.Add("vae_config", "only VAE jobs take vae_config");
}

// The fields of a VAE job (model_type MODEL_TYPE_VAE).
void CheckVaeTraining(Violations& v, const v1::TrainingJobSpec& s) {
  if (s.tasks_size() > 0) {
    v.Add("tasks", "a VAE job trains on records (clip lists), not tasks");
  }
  if (s.records_size() == 0) v.Add("records", "at least one clip list");
  for (int j = 0; j < s.records_size(); ++j) {
    if (s.records(j).empty()) {
      v.Add(absl::StrCat("records[", j, "]"), "must not be empty");
    }
  }
  for (int j = 0; j < s.heldout_size(); ++j) {
    if (s.heldout(j).empty()) {
      v.Add(absl::StrCat("heldout[", j, "]"), "must not be empty");
    }
  }
  if (!s.model().empty() || s.has_model_args()) {
    v.Add("model", "a VAE job takes vae_config or init_from, not model");
  }
  if (s.has_vae_config() == !s.init_from().empty()) {
    v.Add("vae_config", "set exactly one of vae_config and init_from");
  }
  if (s.batch_size() < 0) v.Add("batch_size", "must be >= 0 (0: 2)");
  if (s.crop_size() < 0 || s.crop_size() % 8 != 0) {
    v.Add("crop_size", "must be a multiple of 8 (0: 64)");
  }
  if (s.max_frames() != 0 && (s.max_frames() < 9 || s.max_frames() % 8 != 1)) {
    v.Add("max_frames",
          "must be 1 + 8k with k >= 1, an odd number of latent frames (0: 17)");
  }
  if (s.warmup_steps() < 0) v.Add("warmup_steps", "must be >= 0");
  for (const auto& [field, value] :
       {std::pair<const char*, double>{"weight_decay", s.weight_decay()},
        {"l1_weight", s.l1_weight()},
        {"mse_weight", s.mse_weight()},
        {"kl_weight", s.kl_weight()}}) {
    if (!(value >= 0) || !std::isfinite(value)) {
      v.Add(field, "must be a finite number >= 0");
    }
  }
  v.Range("data_parallel", s.data_parallel(), 0, 1);
}

}  // namespace

google::rpc::BadRequest ValidateTrainingSpec(const v1::TrainingJobSpec& s,
                                             const std::string& prefix) {
  google::rpc::BadRequest out;
  Violations v(&out, prefix);
  const bool vae = s.model_type() == v1::MODEL_TYPE_VAE;
  if (!v1::ModelType_IsValid(s.model_type())) {
    v.Add("model_type", absl::StrCat("unknown value ", s.model_type(),
                                     " (MODEL_TYPE_DIT or MODEL_TYPE_VAE)"));
  } else if (vae) {
    CheckVaeTraining(v, s);
  } else {
    CheckTrainingTasks(v, s);
  }
  if (!(s.learning_rate() > 0) || !std::isfinite(s.learning_rate())) {
    v.Add("learning_rate", "must be positive");
  }
  if (s.max_steps() <= 0) v.Add("max_steps", "must be positive");
  if (s.checkpoint_interval() < 0) v.Add("checkpoint_interval", "must be >= 0");
  if (s.seed() < 0) v.Add("seed", "must be >= 0");
  if (s.grad_clip() < 0) v.Add("grad_clip", "must be >= 0");
  if (s.ema_decay() < 0 || s.ema_decay() >= 1) {
    v.Add("ema_decay", "must be in [0, 1)");
  }
  if (s.ema_interval() < 0) v.Add("ema_interval", "must be >= 0");
  if (s.caption_dropout() < 0 || s.caption_dropout() > 1) {
    v.Add("caption_dropout", "must be in [0, 1]");
  }
  if (s.vd_weight() < 0) v.Add("vd_weight", "must be >= 0");
  if (!v1::Precision_IsValid(s.precision())) {
    v.Add("precision", absl::StrCat("unknown value ", s.precision()));
  }
  if (!vae) v.Range("data_parallel", s.data_parallel(), 0, 64);
  CheckLabels(v, "labels", s.labels());
  return out;
}

void ValidateRequestId(const std::string& request_id, const std::string& field,
                       google::rpc::BadRequest* out) {
  if (request_id.empty()) return;
  bool ok = request_id.size() <= 64;
  for (char c : request_id) {
    ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                c == '-' || c == '_');
  }
  if (!ok) {
    Violations(out, "").Add(
        field, "must be at most 64 letters, digits, '-' or '_' (a UUID)");
  }
}

void ValidatePageSize(int page_size, const std::string& field,
                      google::rpc::BadRequest* out) {
  if (page_size < 0) Violations(out, "").Add(field, "must not be negative");
}

}  // namespace lvs::server
