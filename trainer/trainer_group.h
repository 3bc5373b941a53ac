// The ranks of one training job inside one trainer process: a single
// Trainer, or `data_parallel` Trainers that share every global batch, one
// per device (cuda:K, cuda:K+1, ... or all on the CPU), reducing gradients
// through an in-process c10d group (NCCL between GPUs where built in, Gloo
// otherwise). Each step runs every rank on its own thread and waits for
// all of them; rank 0 writes the checkpoints.
//
// Thread-safety: a TrainerGroup is used by one thread at a time.
#ifndef LVS_TRAINER_TRAINER_GROUP_H_
#define LVS_TRAINER_TRAINER_GROUP_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "trainer/trainer.h"

namespace lvs::trainer {

class TrainerGroup {
 public:
  // Builds `spec.data_parallel` ranks on `device` ("cpu", "cuda" or
  // "cuda:K"). FAILED_PRECONDITION when the devices or the collective
  // library are missing; the Trainer::Create errors otherwise.
  static absl::StatusOr<std::unique_ptr<TrainerGroup>> Create(
      const TrainSpec& spec, const std::string& device);
  ~TrainerGroup();

  // Restores every rank from one checkpoint.
  absl::Status Resume(const std::string& checkpoint_dir);

  // Runs one step on every rank. The stats are rank 0's with the losses
  // averaged over the ranks and the slowest rank's time.
  absl::StatusOr<StepStats> Step();

  // Writes rank 0's state (the ranks hold the same weights) to `dir`.
  absl::Status SaveCheckpoint(const std::string& dir) const;

  int64_t next_step() const { return ranks_[0]->next_step(); }
  bool done() const { return ranks_[0]->done(); }
  // Rank `r`'s trainer.
  Trainer& rank(size_t r) { return *ranks_[r]; }
  size_t size() const { return ranks_.size(); }

 private:
  TrainerGroup() = default;

  std::vector<std::unique_ptr<GradientReducer>> reducers_;
  std::vector<std::unique_ptr<Trainer>> ranks_;
};

// Returns the device of rank `rank` when rank 0 uses `device`: "cuda:K"
// becomes cuda:K+rank, the CPU stays the CPU.
torch::Device RankDevice(const std::string& device, int rank);

}  // namespace lvs::trainer

#endif  // LVS_TRAINER_TRAINER_GROUP_H_
