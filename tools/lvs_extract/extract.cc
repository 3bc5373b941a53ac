// Latent pre-extraction.
#include "tools/lvs_extract/extract.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "model/io/torch_tensors.h"
#include "tools/lvs_extract/item_list.h"

namespace lvs::tools {
namespace fs = std::filesystem;

std::vector<std::pair<int, int>> CropSizeList(int num_patches, int patch_size) {
  std::vector<std::pair<int, int>> out;
  int wp = num_patches, hp = 1;
  while (wp > 0) {
    if (std::max(wp, hp) <= 4.0 * std::min(wp, hp)) {
      out.emplace_back(wp * patch_size, hp * patch_size);
    }
    if ((hp + 1) * wp <= num_patches) {
      ++hp;
    } else {
      --wp;
    }
  }
  return out;
}

std::pair<int, int> ChooseCrop(const std::vector<std::pair<int, int>>& list,
                               int width, int height) {
  std::pair<double, std::pair<int, int>> best{-1.0, {0, 0}};
  for (const auto& c : list) {
    const double rw = double(c.first) / width, rh = double(c.second) / height;
    const std::pair<double, std::pair<int, int>> cand{
        std::min(rw, rh) / std::max(rw, rh), c};
    best = std::max(best, cand);  // sorted(reverse=True)[0].
  }
  return best.second;
}

std::vector<int64_t> SampleFrameIndices(double seconds, double src_fps,
                                        const ExtractOptions& o) {
  int64_t n = static_cast<int64_t>(seconds * o.target_fps + 0.2);
  if (o.max_frames > 0) n = std::min<int64_t>(n, o.max_frames);
  if (n < 1) return {};
  n = (n - 1) / 4 * 4 + 1;
  std::vector<int64_t> out(n);
  for (int64_t i = 0; i < n; ++i) {
    out[i] = std::llround((double(i) / o.target_fps) * src_fps);
  }
  return out;
}

torch::Tensor PreprocessFrames(const std::vector<media::RgbFrame>& frames,
                               std::pair<int, int> crop) {
  namespace F = torch::nn::functional;
  const int w = frames[0].width, h = frames[0].height;
  torch::Tensor x =
      torch::empty({int64_t(frames.size()), h, w, 3}, torch::kUInt8);
  for (size_t i = 0; i < frames.size(); ++i) {
    std::memcpy(x[i].data_ptr(), frames[i].rgb.data(), frames[i].rgb.size());
  }
  x = x.permute({0, 3, 1, 2})
          .to(torch::kFloat32);  // [T, H, W, 3] -> [T, 3, H, W]
  const double scale =
      std::max(double(crop.first) / w, double(crop.second) / h);
  const int64_t rw = std::llround(w * scale), rh = std::llround(h * scale);
  if (rw != w || rh != h) {
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{rh, rw})
                              .mode(torch::kBicubic)
                              .align_corners(false)
                              .antialias(true))
            .round()
            .clamp(0, 255);  // The resized picture is 8-bit again.
  }
  const int64_t top = (rh - crop.second) / 2, left = (rw - crop.first) / 2;
  x = x.narrow(2, top, crop.second).narrow(3, left, crop.first);
  x = x / 127.5 - 1.0;  // [0, 255] -> [-1, 1]
  return x.permute({1, 0, 2, 3}).unsqueeze(0).contiguous();  // [1, 3, T, H, W]
}

namespace {

// Decodes a video and keeps the 1 + 4k frames the reference samples
// (`seconds` is the clip's length). Returns a skip reason (fps below
// target/2, fewer than 9 frames) or nullopt.
absl::StatusOr<std::optional<std::string>> SampleVideo(
    media::VideoDecoder& dec, double fps, const ExtractOptions& options,
    std::vector<media::RgbFrame>* frames, double* seconds) {
  if (fps < options.target_fps / 2) {
    return std::optional<std::string>(
        absl::StrCat("fps ", fps, " below target/2"));
  }
  LVS_ASSIGN_OR_RETURN(std::vector<media::RgbFrame> all, dec.DecodeAll());
  *seconds = double(all.size()) / fps;
  std::vector<int64_t> idx = SampleFrameIndices(*seconds, fps, options);
  while (!idx.empty() && idx.back() >= int64_t(all.size())) idx.pop_back();
  if (idx.size() < 9) {
    return std::optional<std::string>(
        absl::StrCat("too short (", idx.size(), " frames < 9)"));
  }
  idx.resize((idx.size() - 1) / 4 * 4 + 1);
  for (int64_t i : idx) frames->push_back(all[i]);  // May repeat.
  return std::optional<std::string>();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Extractor>> Extractor::Open(
    const std::string& out_dir, const vae::CogVideoXVae* vae,
    const ExtractOptions& options, const pipeline::CaptionEncoder* captions) {
  std::unique_ptr<Extractor> ex(new Extractor(out_dir, vae, options, captions));
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", out_dir, ": ", ec.message()));
  }
  const std::string records = out_dir + "/records.jsonl";
  if (fs::exists(records)) {
    LVS_ASSIGN_OR_RETURN(ex->records_, ReadItems(records));
    for (const nlohmann::json& r : ex->records_) {
      ex->done_.insert(r.value("ori_id", int64_t{-1}));
    }
  }
  for (const fs::directory_entry& e : fs::directory_iterator(out_dir)) {
    const std::string name = e.path().filename().string();
    int index = 0;
    if (std::sscanf(name.c_str(), "shard-%d.safetensors", &index) == 1 &&
        name.size() == std::string("shard-00000.safetensors").size()) {
      ex->next_shard_ = std::max(ex->next_shard_, index + 1);
    }
  }
  LVS_RETURN_IF_ERROR(ex->PrepareCaptions());
  return ex;
}

absl::Status Extractor::PrepareCaptions() {
  int64_t with = 0, without = 0;
  for (const nlohmann::json& r : records_) {
    ++(r.contains("cap_key") ? with : without);
  }
  const std::string records = out_dir_ + "/records.jsonl";
  if (captions_ == nullptr) {
    if (with == 0) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(
        records, " holds ", with,
        " items with caption features (cap_key); rerun with the same "
        "--text-encoder, or extract into a new --out"));
  }
  if (without > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(records, " holds ", without,
                     " items extracted without caption features; rerun without "
                     "--text-encoder, or extract into a new --out"));
  }
  LVS_ASSIGN_OR_RETURN(torch::Tensor feats, captions_->EncodeSystemPrompt());
  const std::string path = out_dir_ + "/system_prompt.safetensors";
  if (!fs::exists(path)) {
    return io::SaveSafetensors(path, {{"cap_feats", feats}});
  }
  // Resuming: the features must come from the same encoder and system
  // prompt (another device or precision may move them a little).
  LVS_ASSIGN_OR_RETURN(io::TensorMap old, io::LoadSafetensors(path));
  auto it = old.find("cap_feats");
  bool same = it != old.end() && it->second.sizes() == feats.sizes();
  if (same) {
    const torch::Tensor a = it->second.to(torch::kFloat32);
    const torch::Tensor b = feats.to(torch::kFloat32);
    same =
        (a - b).norm().item<double>() <= 0.05 * b.norm().item<double>() + 1e-6;
  }
  if (!same) {
    return absl::FailedPreconditionError(absl::StrCat(
        path,
        " holds the features of another system prompt or text encoder; "
        "rerun with the same --text-encoder and --system-prompt, or extract "
        "into a new --out"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> Extractor::Add(
    const nlohmann::json& item, const std::string& path, int64_t ori_id) {
  if (captions_ != nullptr &&
      !(item.contains("prompt") && item["prompt"].is_string())) {
    return absl::InvalidArgumentError(
        "no string \"prompt\" field (needed for the caption features)");
  }
  LVS_ASSIGN_OR_RETURN(std::unique_ptr<media::VideoDecoder> dec,
                       media::VideoDecoder::OpenFile(path));
  const media::VideoStreamInfo& info = dec->info();
  const std::string ext = fs::path(path).extension().string();
  const bool image = ext == ".png" || ext == ".jpg" || ext == ".jpeg";
  const double fps =
      info.fps_den > 0 ? double(info.fps_num) / double(info.fps_den) : 0;
  const int64_t min_area = int64_t{options_.image_size} * options_.image_size;
  if (int64_t{info.width} * info.height < min_area) {
    return std::optional<std::string>(absl::StrCat("too small (", info.width,
                                                   "x", info.height, " < ",
                                                   options_.image_size, "^2)"));
  }
  std::vector<media::RgbFrame> frames;
  double seconds = 0;
  if (image) {
    LVS_ASSIGN_OR_RETURN(frames, dec->DecodeAll(1));
  } else {
    LVS_ASSIGN_OR_RETURN(std::optional<std::string> skip,
                         SampleVideo(*dec, fps, options_, &frames, &seconds));
    if (skip.has_value()) return skip;
  }
  if (frames.empty()) return absl::DataLossError(path + ": no frame decoded");
  const auto crop = ChooseCrop(CropSizeList(min_area / (32 * 32), 32),
                               info.width, info.height);
  try {
    torch::NoGradGuard no_grad;
    torch::Tensor video =
        PreprocessFrames(frames, crop)
            .to(vae_->options().device, vae_->options().dtype);
    LVS_ASSIGN_OR_RETURN(vae::LatentDist dist,
                         vae_->EncodeChunked(video, options_.chunk_frames));
    // mode() * 1.15258426 as the reference caches latents (the constant the
    // pipeline divides by, whatever the config's scaling_factor says).
    torch::Tensor latent =
        (dist.Mode()[0].to(torch::kFloat32) * vae::kPipelineLatentScale)
            .to(torch::kBFloat16)
            .cpu()
            .contiguous();  // [16, F, h, w]
    PendingItem p;
    const std::string key = absl::StrCat(ori_id, ".latent");
    p.record = item;
    // records.jsonl lives in --out, not beside the item list its relative
    // paths were written for: it names each clip absolutely, so readers
    // that resolve against the records file (lvs-motion) find it.
    p.record["path"] = fs::absolute(path).lexically_normal().string();
    p.record["key"] = key;
    p.record["ori_id"] = ori_id;
    p.record["shape"] = latent.sizes().vec();
    p.record["seconds"] = seconds;
    p.record["fps"] = image ? 0.0 : options_.target_fps;
    p.record["width"] = crop.first;
    p.record["height"] = crop.second;
    p.tensors.emplace_back(key, latent);
    LVS_RETURN_IF_ERROR(Queue(std::move(p), ori_id));
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat(path, ": ", e.what_without_backtrace()));
  }
  if (pending_bytes_ >= options_.shard_max_bytes) LVS_RETURN_IF_ERROR(Flush());
  return std::optional<std::string>();
}

absl::Status Extractor::Queue(PendingItem p, int64_t ori_id) {
  if (captions_ != nullptr) {
    LVS_ASSIGN_OR_RETURN(
        torch::Tensor cap,
        captions_->Encode(p.record["prompt"].get<std::string>()));
    const std::string cap_key = absl::StrCat("cap.", ori_id);
    p.record["cap_key"] = cap_key;
    p.record["cap_tokens"] = cap.size(0);
    p.tensors.emplace_back(cap_key, cap);
  }
  for (const auto& [name, t] : p.tensors) {
    p.bytes += t.numel() * t.element_size();
  }
  pending_bytes_ += p.bytes;
  pending_.push_back(std::move(p));
  return absl::OkStatus();
}

absl::Status Extractor::Flush() {
  if (pending_.empty()) return absl::OkStatus();
  // Fill shards up to the size limit, in order; an item's tensors share a
  // shard.
  size_t begin = 0;
  while (begin < pending_.size()) {
    io::TensorMap shard;
    int64_t bytes = 0;
    size_t end = begin;
    const std::string name =
        absl::StrFormat("shard-%05d.safetensors", next_shard_);
    while (end < pending_.size()) {
      PendingItem& p = pending_[end];
      if (end > begin && bytes + p.bytes > options_.shard_max_bytes) break;
      bytes += p.bytes;
      for (const auto& [key, t] : p.tensors) shard[key] = t;
      p.record["shard"] = name;
      ++end;
    }
    LVS_RETURN_IF_ERROR(io::SaveSafetensors(out_dir_ + "/" + name, shard));
    ++next_shard_;
    for (size_t i = begin; i < end; ++i) {
      done_.insert(pending_[i].record["ori_id"].get<int64_t>());
      records_.push_back(pending_[i].record);
    }
    LVS_RETURN_IF_ERROR(WriteJsonl(out_dir_ + "/records.jsonl", records_));
    begin = end;
  }
  pending_.clear();
  pending_bytes_ = 0;
  return absl::OkStatus();
}

}  // namespace lvs::tools
