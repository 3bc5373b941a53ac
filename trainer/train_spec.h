// The definition of a training run (what an admin submits as a
// TrainingJobSpec): the multi-task mix, the model to start from, the
// optimiser and checkpoint settings. Parsed from JSON (the lvs-trainer local
// mode and tests) or converted from the proto by the trainer service, then
// validated; errors are INVALID_ARGUMENT naming the field
// ("tasks[1].patch: ...").
//
// Torch-free. Thread-safety: plain values and pure functions.
#ifndef LVS_TRAINER_TRAIN_SPEC_H_
#define LVS_TRAINER_TRAIN_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace lvs::trainer {

// Whether a task trains on still images (1-frame latents) or videos.
enum class MediaType { kImage, kVideo };

// Numeric precision of training: fp32 everywhere, or bf16 parameters and
// activations with fp32 master weights, optimizer state and gradient
// reduction (the reference's FSDP mixed precision).
enum class TrainPrecision { kFloat32, kBFloat16 };

// One task of the mix (the fields of the reference's task file).
struct TaskSpec {
  std::string name;
  MediaType media_type = MediaType::kVideo;
  // JSONL record files written by lvs-extract; shards are found relative to
  // each file.
  std::vector<std::string> records;
  int64_t global_batch_size = 0;
  int64_t micro_batch_size = 0;
  int64_t max_frames = 0;  // Frames of the window (max_frames / 4 latents).
  // "uniform", "uniform_a_b" (U[a, b)) or "lognorm" (sigmoid(N(0, 1))).
  std::string snr_type = "uniform";
  double time_shift = 1.0;   // t <- t / (t + s - s t); 1 leaves t alone.
  int64_t task_ratio = 1;    // Runs at steps where step % max_ratio < ratio.
  int64_t patch_size = 2;    // P (spatial).
  int64_t f_patch_size = 1;  // pF (temporal).
};

// A whole training run.
struct TrainSpec {
  std::vector<TaskSpec> tasks;
  // Architecture name for a fresh model, or empty with `init_from`.
  std::string model;
  // Optional architecture fields of a fresh model (model_args names: `dim`,
  // `n_layers`, `n_heads`, `in_channels`, `cap_feat_dim`, `patch_sizes`,
  // ...; see dit::DiTConfigFromArgs) when `model` is not a known name.
  nlohmann::json model_args;
  // Checkpoint directory (model_args.pth + consolidated safetensors).
  std::string init_from;
  double learning_rate = 2e-4;
  int64_t max_steps = 0;
  int64_t checkpoint_interval = 0;  // 0: only at the end.
  int64_t seed = 0;
  double grad_clip = 2.0;
  double ema_decay = 0.99;
  int64_t ema_interval = 10;
  double caption_dropout = 0.2;
  double vd_weight = 0.0;
  int64_t data_parallel = 1;  // Processes sharing every global batch.
  TrainPrecision precision = TrainPrecision::kFloat32;
  // Text encoder directory (Gemma-2 layout) for records without cached
  // caption features; empty: every record needs `cap_key`.
  std::string text_encoder;
  // VAE directory (diffusers layout) for image records without a latent.
  std::string vae;
};

// Parses "FxP" (temporal x spatial, e.g. "1x2"; dit::ParsePatchComb) into
// (P, pF).
absl::Status ParsePatch(const std::string& text, int64_t* patch_size,
                        int64_t* f_patch_size);

// Returns the largest task_ratio of the mix (the period of the schedule).
int64_t MaxTaskRatio(const TrainSpec& spec);

// True when task `task` runs at 0-based step `step`.
bool TaskRunsAt(const TrainSpec& spec, size_t task, int64_t step);

// Checks every field that can be checked without reading data or weights:
// counts positive, batch sizes divisible (global by data_parallel, the
// local batch by the micro batch), snr_type known, shift > 0, probabilities
// in [0, 1], exactly one of model / init_from. Errors name the field.
absl::Status ValidateTrainSpec(const TrainSpec& spec);

// Reads a spec from JSON with the field names above (`patch` as "FxP",
// `media_type` "image" or "video", `precision` "fp32" or "bf16"); absent
// fields keep their defaults.
// Validates the result.
absl::StatusOr<TrainSpec> TrainSpecFromJson(const nlohmann::json& json);

}  // namespace lvs::trainer

#endif  // LVS_TRAINER_TRAIN_SPEC_H_
