// The training loop of one process: the reference's flow-matching training
// of a MultiScaleNextDiT on cached latents (multi-task mix with per-task
// patch sizes, gradient accumulation over tasks and micro-batches, caption
// and motion dropout, AdamW (0.9, 0.95, eps 1e-15, wd 0), gradient clipping,
// EMA every `ema_interval` steps), checkpointing and resume.
//
// Determinism: every random choice of an item (which record, window, time,
// noise, dropouts) is drawn from generators seeded by (seed, task, global
// item position), independent of the process count, the micro-batch split
// and of resumption; data order is a seeded permutation per epoch. A run
// resumed from a checkpoint therefore repeats an uninterrupted run's
// trajectory bit for bit on the same device and build, and P processes
// sharing a global batch (the local batch of rank r is items
// [r*B/P, (r+1)*B/P) of each task) match one process up to float summation
// order.
//
// Precision: with TrainPrecision::kBFloat16 the model's parameters, inputs
// and activations are bf16 while fp32 master weights carry the optimizer
// update: gradients are cast to fp32 before the all-reduce, clipping, AdamW
// and the EMA (the reference's FSDP mixed precision). Checkpoints hold the
// fp32 masters.
//
// Thread-safety: a Trainer is used by one thread at a time; trainers of one
// data-parallel group run on one thread each.
#ifndef LVS_TRAINER_TRAINER_H_
#define LVS_TRAINER_TRAINER_H_

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/dit/dit.h"
#include "trainer/latent_dataset.h"
#include "trainer/train_spec.h"

namespace lvs::trainer {

// Averages gradients across the processes of a data-parallel group.
class GradientReducer {
 public:
  virtual ~GradientReducer() = default;
  // This process's rank and the group size.
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // Replaces every tensor by the mean of that tensor over the group.
  virtual absl::Status AllReduceMean(std::vector<torch::Tensor>& tensors) = 0;
};

// Where and how the trainer runs.
struct TrainerOptions {
  torch::Device device = torch::kCPU;
  // Data-parallel group; null for a single process.
  GradientReducer* reducer = nullptr;
};

// What one optimiser step did.
struct StepStats {
  int64_t step = 0;  // 0-based index of the step just taken.
  double loss = 0;   // Mean item loss over the active tasks (this process).
  std::map<std::string, double> task_loss;  // Mean item loss per task.
  double grad_norm = 0;                     // Global norm before clipping.
  double learning_rate = 0;
  int64_t samples = 0;  // Items of the global batch.
  double seconds = 0;   // Wall time of the step.
};

// One process's training state.
class Trainer {
 public:
  // Validates `spec`, opens the task datasets, builds the model (fresh from
  // `spec.model` seeded by `spec.seed`, or loaded from `spec.init_from`) and
  // checks each task's patch against it. Bad specs are INVALID_ARGUMENT
  // naming the field.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(
      const TrainSpec& spec, const TrainerOptions& options = {});
  ~Trainer();

  // Restores weights, EMA, optimizer state and step from a checkpoint.
  absl::Status Resume(const std::string& checkpoint_dir);

  // Runs step `next_step()` and advances it. Errors are Statuses
  // (out of memory -> RESOURCE_EXHAUSTED).
  absl::StatusOr<StepStats> Step();

  // Writes a checkpoint of the current state to `dir` (atomically).
  absl::Status SaveCheckpoint(const std::string& dir) const;

  // Number of steps taken (including those before a resume).
  int64_t next_step() const { return next_step_; }
  // True when every step of the spec has run.
  bool done() const { return next_step_ >= spec_.max_steps; }
  const TrainSpec& spec() const { return spec_; }
  // The model being trained.
  dit::MultiScaleNextDiT& model() { return model_; }
  // The current fp32 master parameters by checkpoint key (views, not
  // copies).
  io::TensorMap Parameters() const;
  // The dtype of the model's parameters and activations.
  torch::ScalarType compute_dtype() const;

 private:
  struct TaskState;
  struct Item;
  Trainer(TrainSpec spec, TrainerOptions options, dit::MultiScaleNextDiT model);

  absl::StatusOr<StepStats> StepImpl();
  absl::StatusOr<Item> LoadItem(TaskState& task, int64_t position);
  absl::StatusOr<double> RunTask(TaskState& task, int64_t local_batch);
  absl::StatusOr<double> ReduceAndClip();
  void AdamWStep();
  void UpdateEma();

  TrainSpec spec_;
  TrainerOptions options_;
  dit::MultiScaleNextDiT model_;
  std::vector<std::unique_ptr<TaskState>> tasks_;
  // Model parameters (compute dtype, with gradients) and their fp32
  // masters (the same tensors in fp32 training), in the same order.
  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::vector<torch::Tensor> masters_;
  std::map<std::string, torch::Tensor> ema_, exp_avg_, exp_avg_sq_;
  std::map<std::string, int64_t> adam_steps_;  // Per parameter, as torch.
  int64_t next_step_ = 0;
};

}  // namespace lvs::trainer

#endif  // LVS_TRAINER_TRAINER_H_
