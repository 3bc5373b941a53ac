// Atomic training checkpoints.
#include "trainer/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "model/io/safetensors.h"
#include "trainer/model_args_writer.h"

namespace lvs::trainer {
namespace fs = std::filesystem;
namespace {

absl::Status FsyncPath(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot open ", path));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return absl::InternalError(absl::StrCat("fsync ", path));
  return absl::OkStatus();
}

}  // namespace

nlohmann::json ModelArgsJson(const dit::DiTConfig& c, const TrainSpec& spec) {
  nlohmann::json a;
  a["model"] = c.model;
  a["dim"] = c.dim;
  a["n_layers"] = c.n_layers;
  a["n_heads"] = c.n_heads;
  a["n_kv_heads"] = c.n_kv_heads;
  a["multiple_of"] = c.multiple_of;
  a["ffn_dim_multiplier"] = c.ffn_dim_multiplier
                                ? nlohmann::json(*c.ffn_dim_multiplier)
                                : nlohmann::json();
  a["norm_eps"] = c.norm_eps;
  a["in_channels"] = c.in_channels;
  a["cap_feat_dim"] = c.cap_feat_dim;
  a["qk_norm"] = c.qk_norm;
  nlohmann::json p = nlohmann::json::array(), f = nlohmann::json::array();
  for (const dit::PatchComb& combo : c.patches) {
    p.push_back(combo.patch);
    f.push_back(combo.f_patch);
  }
  a["patch_sizes"] = p;
  a["f_patch_sizes"] = f;
  a["rope_theta"] = c.rope_theta;
  a["t_scale"] = c.t_scale;
  a["motion_scale"] = c.motion_scale;
  a["lr"] = spec.learning_rate;
  a["max_steps"] = spec.max_steps;
  a["global_seed"] = spec.seed;
  a["ckpt_every"] = spec.checkpoint_interval;
  a["grad_clip"] = spec.grad_clip;
  a["wd"] = 0.0;
  a["vd_weight"] = spec.vd_weight;
  a["init_from"] = spec.init_from.empty() ? nlohmann::json()
                                          : nlohmann::json(spec.init_from);
  a["precision"] = "fp32";
  return a;
}

std::string CheckpointDir(const std::string& root, int64_t step) {
  return absl::StrFormat("%s/step-%07d", root, step);
}

absl::Status WriteTrainingCheckpoint(const std::string& dir,
                                     const nlohmann::json& model_args,
                                     const TrainingCheckpointData& data) {
  if (fs::exists(dir)) {
    return absl::AlreadyExistsError(
        absl::StrCat("checkpoint ", dir, " exists"));
  }
  const std::string tmp = absl::StrCat(dir, ".tmp-", ::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", tmp, ": ", ec.message()));
  }
  LVS_RETURN_IF_ERROR(io::SaveSafetensors(tmp + "/" + kModelFile, data.model,
                                          {{"format", "pt"}}));
  LVS_RETURN_IF_ERROR(
      io::SaveSafetensors(tmp + "/" + kEmaFile, data.ema, {{"format", "pt"}}));
  LVS_RETURN_IF_ERROR(
      io::SaveSafetensors(tmp + "/" + kOptimizerFile, data.optimizer));
  LVS_RETURN_IF_ERROR(WriteModelArgs(tmp + "/" + kModelArgsFile, model_args));
  const std::string state = data.state.dump(2);
  LVS_RETURN_IF_ERROR(io::WriteFileAtomically(tmp + "/" + kStateFile,
                                              state.data(), state.size()));
  LVS_RETURN_IF_ERROR(FsyncPath(tmp));
  fs::rename(tmp, dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot rename ", tmp, " to ", dir, ": ", ec.message()));
  }
  return FsyncPath(fs::path(dir).parent_path().string());
}

absl::StatusOr<TrainingCheckpointData> ReadTrainingCheckpoint(
    const std::string& dir) {
  TrainingCheckpointData data;
  LVS_ASSIGN_OR_RETURN(data.model, io::LoadSafetensors(dir + "/" + kModelFile));
  LVS_ASSIGN_OR_RETURN(data.ema, io::LoadSafetensors(dir + "/" + kEmaFile));
  LVS_ASSIGN_OR_RETURN(data.optimizer,
                       io::LoadSafetensors(dir + "/" + kOptimizerFile));
  std::ifstream in(dir + "/" + kStateFile);
  data.state = nlohmann::json::parse(in, nullptr, false);
  if (data.state.is_discarded() || !data.state.contains("step")) {
    return absl::DataLossError(
        absl::StrCat(dir, "/", kStateFile, " is not a trainer state"));
  }
  return data;
}

absl::StatusOr<std::string> LatestCheckpoint(const std::string& root) {
  std::error_code ec;
  std::string best;
  for (const fs::directory_entry& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("step-", 0) != 0 || name.find(".tmp") != std::string::npos) {
      continue;
    }
    if (name > best) best = name;
  }
  if (best.empty()) {
    return absl::NotFoundError(absl::StrCat("no checkpoint under ", root));
  }
  return root + "/" + best;
}

}  // namespace lvs::trainer
