// Latent pre-extraction (the reference's tools/pre_extract/pre_extract.py):
// frame sampling, crop-size selection, centre cropping, chunked VAE encoding
// with the causal cache carried, and sharded safetensors output with one
// JSONL record per item.
//
// Output directory layout: `shard-NNNNN.safetensors` (many latents each,
// at most `shard_max_bytes` unless one latent is larger), `records.jsonl`
// (the item's original fields plus `shard`, `key`, `shape`, `ori_id`,
// `seconds`, `fps`, `width`, `height`). A shard is written (temporary file,
// fsync, rename) before the record file that names it is rewritten the same
// way, so a crash leaves at most an unreferenced shard; a rerun skips items
// whose `ori_id` is already recorded.
//
// With a caption encoder (caption_encoder.h) every item also gets its
// caption features: `cap.<ori_id>` ([L, Dc] bf16, the real tokens of
// system prompt + `prompt`) in the shard of its latent, named by the
// record's `cap_key` (plus `cap_tokens`, L). `system_prompt.safetensors`
// (`cap_feats`, the system prompt alone, for caption dropout) is written
// atomically beside records.jsonl before any shard. An output directory is
// either all with features or all without: resuming one with the other
// setting is refused, as is resuming with a different system prompt or
// encoder.
//
// Thread-safety: an Extractor is used by one thread.
#ifndef LVS_TOOLS_LVS_EXTRACT_EXTRACT_H_
#define LVS_TOOLS_LVS_EXTRACT_EXTRACT_H_

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "model/media/video_decoder.h"
#include "model/pipeline/caption_encoder.h"
#include "model/vae/vae.h"
#include "nlohmann/json.hpp"

namespace lvs::tools {

// What to extract.
struct ExtractOptions {
  int image_size = 256;   // Crop list of (image_size/32)^2 patches of 32.
  double target_fps = 8;  // Frames are sampled at this rate.
  int max_frames = 0;     // Cap on sampled frames (0: none), then 1+4k.
  int chunk_frames = 32;  // VAE encode chunk (causal cache carried).
  int64_t shard_max_bytes = 256 << 20;
};

// The reference's generate_crop_size_list(num_patches, patch_size, 4.0):
// (width, height) pairs.
std::vector<std::pair<int, int>> CropSizeList(int num_patches, int patch_size);

// The crop the reference's var_center_crop picks for a w x h picture (the
// largest kept fraction min(cw/w, ch/h) / max(cw/w, ch/h), ties to the
// larger size).
std::pair<int, int> ChooseCrop(const std::vector<std::pair<int, int>>& list,
                               int width, int height);

// Frames to sample from a clip of `seconds` at `src_fps`:
// int(seconds * target_fps + 0.2) capped by max_frames, rounded down to
// 1 + 4k. Returns the indices round((i / target_fps) * src_fps).
std::vector<int64_t> SampleFrameIndices(double seconds, double src_fps,
                                        const ExtractOptions& options);

// Resizes (bicubic, antialiased, scale max(cw/w, ch/h)) and centre-crops
// RGB24 frames to crop (width, height) and returns [1, 3, T, ch, cw] in
// [-1, 1] float32.
torch::Tensor PreprocessFrames(const std::vector<media::RgbFrame>& frames,
                               std::pair<int, int> crop);

// Writes latents of items into shards and records.
class Extractor {
 public:
  // Opens (or resumes) the output directory `out_dir`. With `captions`
  // (not owned; may be null) caption features are written too, and
  // system_prompt.safetensors is written or checked. FAILED_PRECONDITION
  // when existing records were made with the other caption setting, or
  // system_prompt.safetensors holds other features.
  static absl::StatusOr<std::unique_ptr<Extractor>> Open(
      const std::string& out_dir, const vae::CogVideoXVae* vae,
      const ExtractOptions& options,
      const pipeline::CaptionEncoder* captions = nullptr);

  // True when item `ori_id` is in the records already.
  bool Done(int64_t ori_id) const { return done_.count(ori_id) > 0; }

  // Extracts one item (`item["path"]` resolved to `path`). Returns a
  // skip reason (too short, too small, low fps) or nullopt when the latent
  // was queued; errors are failures (with captions: INVALID_ARGUMENT when
  // the item has no string `prompt`).
  absl::StatusOr<std::optional<std::string>> Add(const nlohmann::json& item,
                                                 const std::string& path,
                                                 int64_t ori_id);

  // Writes the pending shard and the records.
  absl::Status Flush();

 private:
  // One extracted item waiting for its shard: its record and tensors.
  struct PendingItem {
    nlohmann::json record;
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    int64_t bytes = 0;
  };

  Extractor(std::string out_dir, const vae::CogVideoXVae* vae,
            ExtractOptions options, const pipeline::CaptionEncoder* captions)
      : out_dir_(std::move(out_dir)),
        vae_(vae),
        options_(options),
        captions_(captions) {}

  // Checks the caption setting against the records and writes or checks
  // system_prompt.safetensors.
  absl::Status PrepareCaptions();
  // Adds the caption features of `p` (with captions) and queues it.
  absl::Status Queue(PendingItem p, int64_t ori_id);

  std::string out_dir_;
  const vae::CogVideoXVae* vae_;
  ExtractOptions options_;
  const pipeline::CaptionEncoder* captions_;
  std::vector<nlohmann::json> records_;  // Written ones.
  std::set<int64_t> done_;
  int next_shard_ = 0;
  std::vector<PendingItem> pending_;
  int64_t pending_bytes_ = 0;
};

}  // namespace lvs::tools

#endif  // LVS_TOOLS_LVS_EXTRACT_EXTRACT_H_
