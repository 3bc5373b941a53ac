// Training checkpoints: one directory per saved step holding exactly what
// the worker loads (`model_args.pth` + `consolidated.00-of-01.safetensors`,
// plus the EMA weights as `consolidated_ema.00-of-01.safetensors`, the
// reference's EMA name) and what a resume needs
// (`optimizer.00-of-01.safetensors`: AdamW moments, `trainer_state.json`:
// step and spec). A checkpoint is written into a temporary sibling
// directory, every file fsynced, then renamed into place and the parent
// fsynced, so a crash never leaves a partial checkpoint under its final name.
//
// Thread-safety: free functions; callers serialise writes to one directory.
#ifndef LVS_TRAINER_CHECKPOINT_H_
#define LVS_TRAINER_CHECKPOINT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "model/dit/dit_config.h"
#include "model/io/torch_tensors.h"
#include "nlohmann/json.hpp"
#include "trainer/train_spec.h"

namespace lvs::trainer {

// File names inside a checkpoint directory.
inline constexpr char kModelFile[] = "consolidated.00-of-01.safetensors";
inline constexpr char kEmaFile[] = "consolidated_ema.00-of-01.safetensors";
inline constexpr char kOptimizerFile[] = "optimizer.00-of-01.safetensors";
inline constexpr char kModelArgsFile[] = "model_args.pth";
inline constexpr char kStateFile[] = "trainer_state.json";

// Everything a checkpoint holds.
struct TrainingCheckpointData {
  io::TensorMap model;      // Parameters by checkpoint key (float32).
  io::TensorMap ema;        // EMA parameters, same keys.
  io::TensorMap optimizer;  // "exp_avg.<key>", "exp_avg_sq.<key>".
  nlohmann::json state;     // {"step": completed steps, "adam_step": ...}.
};

// Returns the model_args fields of a checkpoint of `config` trained with
// `spec` (the DiT fields the loader reads plus the reference's training
// fields).
nlohmann::json ModelArgsJson(const dit::DiTConfig& config,
                             const TrainSpec& spec);

// Returns `<root>/step-<step, 7 digits>`.
std::string CheckpointDir(const std::string& root, int64_t step);

// Writes a checkpoint directory `dir` atomically (replacing none: an
// existing `dir` is an ALREADY_EXISTS error).
absl::Status WriteTrainingCheckpoint(const std::string& dir,
                                     const nlohmann::json& model_args,
                                     const TrainingCheckpointData& data);

// Reads a checkpoint written by WriteTrainingCheckpoint.
absl::StatusOr<TrainingCheckpointData> ReadTrainingCheckpoint(
    const std::string& dir);

// Returns the checkpoint directory of the highest step under `root`, or
// NOT_FOUND when there is none (temporary directories are ignored).
absl::StatusOr<std::string> LatestCheckpoint(const std::string& root);

}  // namespace lvs::trainer

#endif  // LVS_TRAINER_CHECKPOINT_H_
