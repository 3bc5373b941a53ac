// The flow-matching objective of the reference (`Transport.sample`,
// `training_losses`): x0 is noise, x1 data, x_t = t x1 + (1 - t) x0, the
// model predicts the velocity x1 - x0; the loss of an item is the MSE plus
// `vd_weight * (1 - cos(out, target))` over the flattened item.
//
// Images with pF > 1 are repeated pF times inside the DiT and cropped back
// to their first frame (MultiScaleNextDiT::forward_list), which is the
// reference's loss mask for repeated image frames.
//
// Thread-safety: pure functions (the generator passed in is mutated).
#ifndef LVS_TRAINER_FLOW_MATCHING_H_
#define LVS_TRAINER_FLOW_MATCHING_H_

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <string>
#include <vector>

#include "model/dit/dit.h"

namespace lvs::trainer {

// Draws one training time: "uniform" U[0, 1), "uniform_a_b" U[a, b),
// "lognorm" sigmoid(N(0, 1)); then t <- t / (t + s - s t) for shift s.
// REQUIRES: `snr_type` passed ValidateTrainSpec.
float SampleTime(const std::string& snr_type, double shift, at::Generator& gen);

// One micro-batch: items of possibly different sizes with their noise,
// times and conditioning (row i belongs to item i).
struct FlowBatch {
  std::vector<torch::Tensor> x1;  // Data latents [C, F, H, W].
  std::vector<torch::Tensor> x0;  // Noise, same shapes.
  torch::Tensor t;                // [N] float32.
  torch::Tensor cap_feats;        // [N, L, Dc].
  torch::Tensor cap_mask;         // [N, L].
  torch::Tensor motion;           // [N] (negative: unconditioned).
};

// Runs the model on x_t and returns the per-item losses [N] (float32, with
// autograd history).
torch::Tensor FlowMatchingLoss(dit::MultiScaleNextDiT& model,
                               const FlowBatch& batch, int64_t patch_size,
                               int64_t f_patch_size, double vd_weight);

}  // namespace lvs::trainer

#endif  // LVS_TRAINER_FLOW_MATCHING_H_
