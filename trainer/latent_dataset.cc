// Record files, shard access and latent handling.
#include "trainer/latent_dataset.h"

#include <filesystem>
#include <fstream>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "model/common/status_macros.h"
#include "nlohmann/json.hpp"

namespace lvs::trainer {
namespace fs = std::filesystem;

absl::StatusOr<std::unique_ptr<LatentDataset>> LatentDataset::Open(
    const std::vector<std::string>& record_files, bool need_captions,
    const std::string& field) {
  std::unique_ptr<LatentDataset> ds(new LatentDataset());
  for (size_t r = 0; r < record_files.size(); ++r) {
    const std::string f = absl::StrCat(field, "[", r, "]");
    const fs::path file = record_files[r];
    std::ifstream in(file);
    if (!in) {
      return absl::InvalidArgumentError(
          absl::StrCat(f, ": record file ", file.string(), " cannot be read"));
    }
    const fs::path dir = file.parent_path();
    const std::string system_prompt = (dir / "system_prompt.safetensors");
    if (need_captions && !fs::exists(system_prompt)) {
      return absl::InvalidArgumentError(
          absl::StrCat(f, ": ", system_prompt,
                       " (caption-dropout features) does not exist"));
    }
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("shard") ||
          !j.contains("key") || !j["shard"].is_string() ||
          !j["key"].is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(f, ": line ", n, " of ", file.string(),
                         " is not a record with string shard and key"));
      }
      LatentItem item;
      item.shard = (dir / j["shard"].get<std::string>()).string();
      item.key = j["key"].get<std::string>();
      item.cap_key = j.value("cap_key", std::string());
      item.system_prompt = system_prompt;
      if (j.contains("unimatch_flow") && j["unimatch_flow"].is_number()) {
        item.motion = j["unimatch_flow"].get<double>();
      }
      if (!fs::exists(item.shard)) {
        return absl::InvalidArgumentError(
            absl::StrCat(f, ": shard ", item.shard, " of line ", n, " of ",
                         file.string(), " does not exist"));
      }
      if (need_captions && item.cap_key.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            f, ": line ", n, " of ", file.string(),
            " has no cached caption features (cap_key); run lvs-extract "
            "with --text-encoder"));
      }
      ds->items_.push_back(std::move(item));
    }
    if (ds->items_.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(f, ": ", file.string(), " holds no records"));
    }
  }
  return ds;
}

absl::StatusOr<torch::Tensor> LatentDataset::Tensor(const std::string& file,
                                                    const std::string& key) {
  const io::TensorMap* shard = nullptr;
  {
    absl::MutexLock lock(&mu_);
    auto it = shards_.find(file);
    if (it == shards_.end()) {
      LVS_ASSIGN_OR_RETURN(io::TensorMap tensors, io::LoadSafetensors(file));
      it = shards_.emplace(file, std::move(tensors)).first;
    }
    shard = &it->second;  // std::map nodes are stable; never erased.
  }
  auto it = shard->find(key);
  if (it == shard->end()) {
    return absl::NotFoundError(
        absl::StrCat(file, " has no tensor \"", key, "\""));
  }
  return it->second.to(torch::kFloat32);
}

absl::StatusOr<torch::Tensor> LatentDataset::Latent(size_t i) {
  LVS_ASSIGN_OR_RETURN(torch::Tensor t, Tensor(items_[i].shard, items_[i].key));
  if (t.dim() != 4) {
    return absl::InvalidArgumentError(absl::StrCat(items_[i].shard,
                                                   ": latent \"", items_[i].key,
                                                   "\" is not [C, F, H, W]"));
  }
  return t;
}

absl::StatusOr<torch::Tensor> LatentDataset::Caption(size_t i,
                                                     bool system_prompt) {
  const LatentItem& item = items_[i];
  if (system_prompt) return Tensor(item.system_prompt, "cap_feats");
  return Tensor(item.shard, item.cap_key);
}

torch::Tensor PrepareLatent(const torch::Tensor& latent, int64_t max_frames,
                            int64_t patch_size, int64_t f_patch_size,
                            std::mt19937_64& rng) {
  torch::Tensor x = latent;
  int64_t frames = x.size(1);
  if (frames > 1) {
    x = x.narrow(1, 1, frames - 1);  // Drop the first latent.
    frames -= 1;
    const int64_t window = std::max<int64_t>(1, max_frames / 4);
    if (frames > window) {
      std::uniform_int_distribution<int64_t> start(0, frames - window);
      x = x.narrow(1, start(rng), window);
      frames = window;
    }
    if (frames >= f_patch_size) {
      x = x.narrow(1, 0, frames - frames % f_patch_size);
    }
  }
  const int64_t m = std::lcm<int64_t>(4, patch_size);
  const int64_t h = x.size(2) - x.size(2) % m, w = x.size(3) - x.size(3) % m;
  x = x.narrow(2, (x.size(2) - h) / 2, h).narrow(3, (x.size(3) - w) / 2, w);
  return x.contiguous();
}

}  // namespace lvs::trainer
