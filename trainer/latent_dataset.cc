// Record files, shard access and latent handling.
#include "trainer/latent_dataset.h"

#include <filesystem>
#include <fstream>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/pipeline/caption_encoder.h"
#include "nlohmann/json.hpp"

namespace lvs::trainer {
namespace fs = std::filesystem;

namespace {

// Parses one record of a file in `dir`; `where` ("tasks[0].records[1]: line
// 3 of x.jsonl") starts every error.
absl::StatusOr<LatentItem> ParseRecord(const std::string& line,
                                       const std::string& where,
                                       const fs::path& dir,
                                       const LatentDatasetOptions& options) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("shard") ||
      !j.contains("key") || !j["shard"].is_string() || !j["key"].is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " is not a record with string shard and key"));
  }
  LatentItem item;
  item.shard = (dir / j["shard"].get<std::string>()).string();
  item.key = j["key"].get<std::string>();
  item.cap_key = j.value("cap_key", std::string());
  const bool has_prompt = j.contains("prompt") && j["prompt"].is_string();
  if (has_prompt) item.prompt = j["prompt"].get<std::string>();
  if (j.contains("unimatch_flow") && j["unimatch_flow"].is_number()) {
    item.motion = j["unimatch_flow"].get<double>();
  }
  if (!fs::exists(item.shard)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": shard ", item.shard, " does not exist"));
  }
  if (options.need_captions && item.cap_key.empty()) {
    if (options.text_encoder.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where,
          " has no cached caption features (cap_key); run lvs-extract "
          "with --text-encoder, or set text_encoder"));
    }
    if (!has_prompt) {
      return absl::InvalidArgumentError(
          absl::StrCat(where,
                       " has neither cached caption features (cap_key) nor "
                       "a string prompt to encode"));
    }
  }
  return item;
}

// Appends the items of record file `file` (`f` names it in errors).
absl::Status ReadRecordFile(const std::string& f, const fs::path& file,
                            const LatentDatasetOptions& options,
                            std::vector<LatentItem>* items) {
  std::ifstream in(file);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(f, ": record file ", file.string(), " cannot be read"));
  }
  const fs::path dir = file.parent_path();
  std::string system_prompt = (dir / "system_prompt.safetensors");
  if (!fs::exists(system_prompt)) {
    if (options.need_captions && options.text_encoder.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(f, ": ", system_prompt,
                       " (caption-dropout features) does not exist"));
    }
    system_prompt.clear();  // Encoded on the fly.
  }
  const size_t first = items->size();
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    LVS_ASSIGN_OR_RETURN(
        LatentItem item,
        ParseRecord(line, absl::StrCat(f, ": line ", n, " of ", file.string()),
                    dir, options));
    item.system_prompt = system_prompt;
    items->push_back(std::move(item));
  }
  if (items->size() == first) {
    return absl::InvalidArgumentError(
        absl::StrCat(f, ": ", file.string(), " holds no records"));
  }
  return absl::OkStatus();
}

}  // namespace

LatentDataset::LatentDataset(LatentDatasetOptions options)
    : options_(std::move(options)) {}

LatentDataset::~LatentDataset() = default;

absl::StatusOr<std::unique_ptr<LatentDataset>> LatentDataset::Open(
    const std::vector<std::string>& record_files,
    const LatentDatasetOptions& options, const std::string& field) {
  if (!options.vae.empty()) {
    return absl::InvalidArgumentError(
        "vae: on-the-fly VAE encoding is not supported; pre-extract with "
        "lvs-extract");
  }
  if (!options.text_encoder.empty()) {
    if (absl::Status s =
            pipeline::CaptionEncoder::CheckDir(options.text_encoder);
        !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("text_encoder: ", s.message()));
    }
    try {
      (void)torch::Device(options.device);
    } catch (const c10::Error& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("device: \"", options.device,
                       "\" is not a device: ", e.what_without_backtrace()));
    }
  }
  std::unique_ptr<LatentDataset> ds(new LatentDataset(options));
  for (size_t r = 0; r < record_files.size(); ++r) {
    LVS_RETURN_IF_ERROR(ReadRecordFile(absl::StrCat(field, "[", r, "]"),
                                       record_files[r], options, &ds->items_));
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

absl::StatusOr<const pipeline::CaptionEncoder*> LatentDataset::Encoder() {
  absl::MutexLock lock(&mu_);
  if (!encoder_) {
    if (options_.text_encoder.empty()) {
      return absl::FailedPreconditionError(
          "caption features are not cached and no text encoder is set");
    }
    pipeline::CaptionEncoderOptions o;
    o.device = torch::Device(options_.device);
    o.dtype = o.device.is_cpu() ? torch::kFloat : torch::kBFloat16;
    absl::StatusOr<std::unique_ptr<pipeline::CaptionEncoder>> e =
        pipeline::CaptionEncoder::Create(options_.text_encoder, o);
    if (!e.ok()) {
      return absl::Status(e.status().code(),
                          absl::StrCat("text_encoder: ", e.status().message()));
    }
    encoder_ = std::move(*e);
  }
  return encoder_.get();
}

absl::StatusOr<torch::Tensor> LatentDataset::EncodedSystemPrompt() {
  {
    absl::MutexLock lock(&mu_);
    if (system_feats_.defined()) return system_feats_;
  }
  LVS_ASSIGN_OR_RETURN(const pipeline::CaptionEncoder* encoder, Encoder());
  LVS_ASSIGN_OR_RETURN(torch::Tensor feats, encoder->EncodeSystemPrompt());
  feats = feats.to(torch::kFloat32);
  absl::MutexLock lock(&mu_);
  system_feats_ = feats;
  return feats;
}

absl::StatusOr<torch::Tensor> LatentDataset::Caption(size_t i,
                                                     bool system_prompt) {
  const LatentItem& item = items_[i];
  if (system_prompt) {
    if (item.system_prompt.empty()) return EncodedSystemPrompt();
    return Tensor(item.system_prompt, "cap_feats");
  }
  if (!item.cap_key.empty()) return Tensor(item.shard, item.cap_key);
  LVS_ASSIGN_OR_RETURN(const pipeline::CaptionEncoder* encoder, Encoder());
  LVS_ASSIGN_OR_RETURN(torch::Tensor feats, encoder->Encode(item.prompt));
  return feats.to(torch::kFloat32);
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
