// The DiT over several ranks (threads of one process, one device each):
// classifier-free-guidance parallelism (while guidance is on, the positive
// and negative branches run on two rank groups at once) times Ulysses
// sequence parallelism inside each group (ulysses.h). Rank r = g * sp + s
// is member s of CFG group g. Every call hands each active rank its rows
// and runs the ranks on their own threads; group g's rank 0 returns the
// group's output. While guidance is off only group 0 runs. Each rank keeps
// its own step cache (pipeline/step_cache.h), whose decisions agree inside a
// group (summed over its ranks).
//
// Thread-safety: one sampling run at a time (the caller's thread drives it).
#ifndef LVS_MODEL_PARALLEL_PARALLEL_DIT_H_
#define LVS_MODEL_PARALLEL_PARALLEL_DIT_H_

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/dit/dit.h"
#include "model/parallel/communicator.h"
#include "model/parallel/ulysses.h"
#include "model/pipeline/step_cache.h"
#include "model/sampler/multi_cfg.h"

namespace lvs::parallel {

// How the ranks split the work: cfg (1 or 2) groups of sp ranks.
struct ParallelLayout {
  int cfg = 1;
  int sp = 1;
  int ranks() const { return cfg * sp; }
  std::string ToString() const;  // e.g. "cfg2xsp2".
};

// The layout for `devices` ranks and a DiT with `n_heads` heads: CFG
// parallel when guidance runs and the rank count is even, then the largest
// sequence-parallel degree that divides the heads and the remaining ranks.
ParallelLayout ChooseLayout(int devices, int64_t n_heads, bool guided);

class ParallelDiT {
 public:
  // `replicas[r]` is rank r's model on `devices[r]` (one model may serve
  // several CPU ranks). Forms the sequence-parallel groups (Gloo on the
  // CPU, NCCL between CUDA devices where built in). Errors: INVALID_ARGUMENT
  // for sizes that do not match the layout or heads that do not split,
  // FAILED_PRECONDITION / UNAVAILABLE from the group.
  static absl::StatusOr<std::unique_ptr<ParallelDiT>> Create(
      std::vector<dit::MultiScaleNextDiT> replicas,
      std::vector<torch::Device> devices, ParallelLayout layout,
      std::chrono::milliseconds timeout = std::chrono::minutes(10));

  // A VelocityFn for one sampling run of `batch` positive rows and
  // `total_calls` model calls with step caching at `threshold` (0: off).
  // `counts` (optional) receives the forward counts after every call.
  sampler::VelocityFn Velocity(double threshold, int64_t batch, int total_calls,
                               std::shared_ptr<pipeline::ForwardCounts> counts);

  const ParallelLayout& layout() const { return layout_; }

 private:
  struct Run;  // The caches and call count of one sampling run.

  ParallelDiT() = default;
  absl::StatusOr<torch::Tensor> Call(Run& run, const torch::Tensor& x,
                                     const torch::Tensor& t,
                                     const torch::Tensor& cap_feats,
                                     const torch::Tensor& cap_mask,
                                     const torch::Tensor& motion_score,
                                     const sampler::PatchComb& patch);

  ParallelLayout layout_;
  std::vector<dit::MultiScaleNextDiT> replicas_;
  std::vector<torch::Device> devices_;
  std::vector<std::unique_ptr<Communicator>> comms_;   // Per rank (sp > 1).
  std::vector<std::unique_ptr<UlyssesAttention>> sp_;  // Per rank (sp > 1).
};

}  // namespace lvs::parallel

#endif  // LVS_MODEL_PARALLEL_PARALLEL_DIT_H_
