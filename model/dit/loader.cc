// Checkpoint loading of the DiT (LoadDiT, BuildDiT, LoadDiTConfig).
#include <cstdlib>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "model/common/torch_status.h"
#include "model/dit/dit.h"
#include "model/io/checkpoint.h"
#include "model/io/state_dict.h"
#include "model/io/torch_pickle.h"

namespace lvs::dit {
namespace {

// Compares the config with what the tensors imply, naming each field that
// disagrees (clearer than a list of mis-shaped tensors).
absl::Status CheckConfigAgainstTensors(const DiTConfig& c,
                                       const io::TensorMap& tensors,
                                       const std::string& source) {
  std::vector<std::string> problems;
  auto expect = [&](const char* field, int64_t config, const std::string& key,
                    int dim, int64_t divisor = 1) {
    auto it = tensors.find(key);
    if (it == tensors.end() || it->second.dim() <= dim) return;
    const int64_t got = it->second.size(dim) / divisor;
    if (got != config) {
      problems.push_back(absl::StrCat(field, " is ", config,
                                      " in model_args but ", got,
                                      " in the checkpoint (", key, ")"));
    }
  };
  expect("dim", c.dim, "pad_token", 0);
  expect("n_heads", c.n_heads, "layers.0.attention.gate", 0);
  expect("n_kv_heads", c.n_kv_heads, "layers.0.attention.wk.weight", 0,
         c.head_dim());
  expect("cap_feat_dim", c.cap_feat_dim, "cap_embedder.1.weight", 1);
  expect("ffn hidden width", c.ffn_hidden_dim(),
         "layers.0.feed_forward.w1.weight", 0);
  std::set<int64_t> layer_ids;
  std::set<std::string> patch_keys;
  for (const auto& [key, unused] : tensors) {
    if (key.rfind("layers.", 0) == 0) {
      layer_ids.insert(std::atoll(key.c_str() + 7));
    } else if (key.rfind("all_x_embedder.", 0) == 0) {
      patch_keys.insert(key.substr(15, key.find('.', 15) - 15));
    }
  }
  if (!layer_ids.empty() &&
      static_cast<int64_t>(layer_ids.size()) != c.n_layers) {
    problems.push_back(absl::StrCat("n_layers is ", c.n_layers,
                                    " in model_args but the "
                                    "checkpoint has ",
                                    layer_ids.size(), " layers"));
  }
  std::vector<std::string> wanted = c.patch_keys();
  if (!patch_keys.empty() &&
      std::set<std::string>(wanted.begin(), wanted.end()) != patch_keys) {
    problems.push_back(
        absl::StrCat("patch combinations are ", absl::StrJoin(wanted, ","),
                     " in model_args but ", absl::StrJoin(patch_keys, ","),
                     " in the checkpoint"));
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      source,
      ": config does not match the weights: ", absl::StrJoin(problems, "; ")));
}

}  // namespace

absl::StatusOr<MultiScaleNextDiT> BuildDiT(
    const DiTConfig& config,
    const std::map<std::string, torch::Tensor>& tensors,
    const DiTLoadOptions& options, const std::string& source) {
  if (options.dtype != torch::kFloat32 && options.dtype != torch::kBFloat16) {
    return absl::InvalidArgumentError(
        absl::StrCat("LoadDiT: dtype must be float32 or bfloat16, got ",
                     c10::toString(options.dtype)));
  }
  LVS_ASSIGN_OR_RETURN(io::TensorMap canonical,
                       io::CanonicalizeKeys(tensors, source));
  LVS_RETURN_IF_ERROR(CheckConfigAgainstTensors(config, canonical, source));
  try {
    torch::NoGradGuard no_grad;
    MultiScaleNextDiT model(config, options.attention);
    io::StateDictOptions sd;
    sd.dtype = options.dtype;
    sd.device = options.device;
    LVS_RETURN_IF_ERROR(io::LoadStateDict(*model, canonical, sd, source));
    model->eval();
    for (torch::Tensor& p : model->parameters()) p.set_requires_grad(false);
    return model;
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e, source);
  }
}

absl::StatusOr<DiTConfig> LoadDiTConfig(const std::string& ckpt_dir) {
  const std::string path = ckpt_dir + "/model_args.pth";
  LVS_ASSIGN_OR_RETURN(nlohmann::json args, io::ReadPickledArgs(path));
  return DiTConfigFromArgs(args, path);
}

absl::StatusOr<MultiScaleNextDiT> LoadDiT(const std::string& ckpt_dir,
                                          const DiTLoadOptions& options) {
  LVS_ASSIGN_OR_RETURN(DiTConfig config, LoadDiTConfig(ckpt_dir));
  // What generate.py reads: the safetensors file first, then the .pth.
  std::string path = ckpt_dir + "/consolidated.00-of-01.safetensors";
  if (!std::filesystem::exists(path)) {
    path = ckpt_dir + "/consolidated.00-of-01.pth";
    if (!std::filesystem::exists(path)) {
      return absl::NotFoundError(
          absl::StrCat(ckpt_dir,
                       ": no consolidated.00-of-01.safetensors or "
                       "consolidated.00-of-01.pth"));
    }
  }
  LVS_ASSIGN_OR_RETURN(io::TensorMap tensors, io::LoadCheckpoint(path));
  return BuildDiT(config, tensors, options, path);
}

}  // namespace lvs::dit
