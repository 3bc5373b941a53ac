// Cached-latent datasets (what lvs-extract writes) and the per-item latent
// handling of the reference's T2VItemProcessor.
//
// A record file is JSONL; each line holds the item's original fields
// (`prompt`, ...), `shard` (a safetensors file relative to the record file),
// `key` (the latent tensor [16, F, H/8, W/8], bf16, already scaled),
// `shape`, `seconds`, `fps`, `width`, `height`, optionally `cap_key` (cached
// caption features [L, Dc] in the same shard) and `unimatch_flow` (motion
// score, lvs-motion). `system_prompt.safetensors` beside the record file
// holds `cap_feats`, the features of the system prompt alone (caption
// dropout).
//
// With a text encoder (LatentDatasetOptions::text_encoder), records without
// `cap_key` and record files without system_prompt.safetensors are accepted:
// their caption features are computed on the fly from the record's `prompt`
// by a Gemma-2 encoder loaded on first use (model/pipeline/
// caption_encoder.h), with the same values lvs-extract --text-encoder
// caches. Only the system prompt's features are kept in memory; item
// features are encoded on every call (cache them with lvs-extract for real
// runs).
//
// Thread-safety: a dataset may be read from several threads; the shard
// cache and the lazily loaded encoder are guarded by a mutex, and encoding
// runs outside it.
#ifndef LVS_TRAINER_LATENT_DATASET_H_
#define LVS_TRAINER_LATENT_DATASET_H_

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "model/io/torch_tensors.h"

namespace lvs::pipeline {
class CaptionEncoder;
}  // namespace lvs::pipeline

namespace lvs::trainer {

// One item of a record file.
struct LatentItem {
  std::string shard;    // Absolute shard path.
  std::string key;      // Latent tensor name.
  std::string cap_key;  // Caption-feature tensor name; empty when absent.
  // system_prompt.safetensors beside the file; empty when it is absent and
  // the system prompt is encoded on the fly.
  std::string system_prompt;
  std::string prompt;  // The record's `prompt` ("" when absent).
  double motion = -1;  // unimatch_flow, -1 when absent.
};

// How a dataset is read.
struct LatentDatasetOptions {
  // Every item needs caption features: cached (`cap_key` plus
  // system_prompt.safetensors) or, with `text_encoder`, encoded on the fly.
  bool need_captions = true;
  // Text encoder directory (Gemma-2 layout) used for items without cached
  // features; empty: cached features are required. The encoder runs in
  // float32 on the CPU and in bfloat16 elsewhere.
  std::string text_encoder;
  // VAE directory for image records without a latent. On-the-fly VAE
  // encoding is not supported: Open rejects a non-empty value.
  std::string vae;
  // Device of on-the-fly encoders ("cpu", "cuda:0").
  std::string device = "cpu";
};

// The items of one task's record files.
class LatentDataset {
 public:
  // Reads every record file; checks that each shard and (when
  // `options.need_captions` without a text encoder) each
  // system_prompt.safetensors exists; with a text encoder, that records
  // without `cap_key` have a string `prompt` and that the encoder folder
  // looks right (weights are loaded on first use). `field` names the spec
  // field in errors ("tasks[0].records"), e.g. INVALID_ARGUMENT
  // "tasks[0].records[1]: line 3 of r.jsonl: shard x.safetensors does not
  // exist";
  // a bad text encoder folder is INVALID_ARGUMENT "text_encoder: ...".
  static absl::StatusOr<std::unique_ptr<LatentDataset>> Open(
      const std::vector<std::string>& record_files,
      const LatentDatasetOptions& options, const std::string& field);
  ~LatentDataset();

  // Number of items.
  size_t size() const { return items_.size(); }
  // Returns item `i`.
  const LatentItem& item(size_t i) const { return items_[i]; }

  // Returns the float32 latent [16, F, H, W] of item `i`.
  absl::StatusOr<torch::Tensor> Latent(size_t i);
  // Returns the float32 caption features [L, Dc] of item `i`, or the
  // system prompt's when `system_prompt` is true: cached ones, or encoded
  // on the fly (bf16-rounded like the cache).
  absl::StatusOr<torch::Tensor> Caption(size_t i, bool system_prompt);

 private:
  explicit LatentDataset(LatentDatasetOptions options);
  absl::StatusOr<torch::Tensor> Tensor(const std::string& file,
                                       const std::string& key);
  // Loads the text encoder on first use.
  absl::StatusOr<const pipeline::CaptionEncoder*> Encoder();
  // The system prompt's features, encoded once.
  absl::StatusOr<torch::Tensor> EncodedSystemPrompt();

  LatentDatasetOptions options_;
  std::vector<LatentItem> items_;
  absl::Mutex mu_;
  std::map<std::string, io::TensorMap> shards_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<pipeline::CaptionEncoder> encoder_ ABSL_GUARDED_BY(mu_);
  torch::Tensor system_feats_ ABSL_GUARDED_BY(mu_);  // Undefined until used.
};

// The reference's latent handling for a training item: drops the first
// latent (videos with more than one latent), takes a random window of
// `max_frames / 4` latents, truncates the frame count to a multiple of
// `f_patch_size` and centre-crops H and W to multiples of
// lcm(4, patch_size). Images (F = 1) keep their single latent.
torch::Tensor PrepareLatent(const torch::Tensor& latent, int64_t max_frames,
                            int64_t patch_size, int64_t f_patch_size,
                            std::mt19937_64& rng);

}  // namespace lvs::trainer

#endif  // LVS_TRAINER_LATENT_DATASET_H_
