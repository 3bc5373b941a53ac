// Step caching for the DiT (first-block cache): layer 0 always runs; the
// remaining layers are skipped, and their residual from the last computed
// step is added instead, when the modulated input of layer 0 changed by less
// than `threshold` (relative L1: mean |m - m_prev| / mean |m_prev|, per CFG
// branch, every branch below the threshold) since the last computed step.
// The cache resets when the patch combination changes and when guidance
// turns on or off; the first and last model calls of a run always compute.
// Threshold 0 never skips and runs exactly forward_list's operations (the
// result is bit-identical to the plain DiT).
//
// Thread-safety: a StepCache belongs to one sampling run on one thread.
#ifndef LVS_MODEL_PIPELINE_STEP_CACHE_H_
#define LVS_MODEL_PIPELINE_STEP_CACHE_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "model/dit/dit.h"
#include "model/sampler/multi_cfg.h"

namespace lvs::pipeline {

// DiT forwards of a run, one per CFG branch and step.
struct ForwardCounts {
  int64_t computed = 0;
  int64_t cached = 0;
};

class StepCache {
 public:
  explicit StepCache(double threshold) : threshold_(threshold) {}

  // One DiT forward of `x` [R, C, F, H, W] whose rows form `branches` equal
  // CFG branches (rows [i R/branches, (i+1) R/branches) are branch i).
  // `guided`: guidance is on for this call; `always_compute`: first or last
  // call. With `parallel`, this rank holds its share of the tokens
  // (model/parallel) and the decision is summed over the ranks, which all
  // call Forward alike. Returns [R, C, F, H, W] (the model dtype).
  absl::StatusOr<torch::Tensor> Forward(
      dit::MultiScaleNextDiT& model, const torch::Tensor& x,
      const torch::Tensor& t, const torch::Tensor& cap_feats,
      const torch::Tensor& cap_mask, const torch::Tensor& motion_score,
      const sampler::PatchComb& patch, int branches, bool guided,
      bool always_compute, dit::AttentionParallel* parallel = nullptr);

  // Forgets the cached state (the counts stay).
  void Reset() {
    valid_ = false;
    prev_modulated_.clear();
    residual_ = torch::Tensor();
  }

  const ForwardCounts& counts() const { return counts_; }
  double threshold() const { return threshold_; }

 private:
  // True when every branch moved less than the threshold.
  bool CanSkip(const torch::Tensor& modulated, const dit::DiTForward& f,
               int branches, int64_t rows_per_branch);
  void Remember(const torch::Tensor& modulated, const dit::DiTForward& f,
                int branches, int64_t rows_per_branch);

  const double threshold_;
  bool valid_ = false;  // The state below belongs to the current phase.
  sampler::PatchComb patch_;
  bool guided_ = false;
  int branches_ = 0;
  std::vector<torch::Tensor>
      prev_modulated_;      // Per branch, this rank's tokens.
  torch::Tensor residual_;  // [L_local, dim]: layers 1.. added at that step.
  ForwardCounts counts_;
};

// A sampler::VelocityFn over `model` with a StepCache for a sampler batch of
// `batch` positive rows and `total_calls` model calls (guided calls carry
// 2 * batch rows). `counts` (optional) receives the counts after every call.
sampler::VelocityFn CachedDiTVelocity(dit::MultiScaleNextDiT model,
                                      double threshold, int64_t batch,
                                      int total_calls,
                                      std::shared_ptr<ForwardCounts> counts);

}  // namespace lvs::pipeline

#endif  // LVS_MODEL_PIPELINE_STEP_CACHE_H_
