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
// Thread-safety: a dataset may be read from several threads; the shard cache
// is guarded by a mutex.
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

namespace lvs::trainer {

// One item of a record file.
struct LatentItem {
  std::string shard;          // Absolute shard path.
  std::string key;            // Latent tensor name.
  std::string cap_key;        // Caption-feature tensor name; empty when absent.
  std::string system_prompt;  // system_prompt.safetensors beside the file.
  double motion = -1;         // unimatch_flow, -1 when absent.
};

// The items of one task's record files.
class LatentDataset {
 public:
  // Reads every record file; checks that each shard and (when
  // `need_captions`) each system_prompt.safetensors exists. `field` names the
  // spec field in errors ("tasks[0].records"), e.g. INVALID_ARGUMENT
  // "tasks[0].records[1]: shard x.safetensors of line 3 does not exist".
  static absl::StatusOr<std::unique_ptr<LatentDataset>> Open(
      const std::vector<std::string>& record_files, bool need_captions,
      const std::string& field);

  // Number of items.
  size_t size() const { return items_.size(); }
  // Returns item `i`.
  const LatentItem& item(size_t i) const { return items_[i]; }

  // Returns the float32 latent [16, F, H, W] of item `i`.
  absl::StatusOr<torch::Tensor> Latent(size_t i);
  // Returns the float32 caption features [L, Dc] of item `i`, or the
  // system prompt's when `system_prompt` is true.
  absl::StatusOr<torch::Tensor> Caption(size_t i, bool system_prompt);

 private:
  LatentDataset() = default;
  absl::StatusOr<torch::Tensor> Tensor(const std::string& file,
                                       const std::string& key);

  std::vector<LatentItem> items_;
  absl::Mutex mu_;
  std::map<std::string, io::TensorMap> shards_ ABSL_GUARDED_BY(mu_);
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
