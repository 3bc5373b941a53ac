// Initial weights of a DiT trained from scratch, as the reference's NextDiT
// draws them (LibTorch's default Linear init differs): adaLN-Zero blocks
// (modulation and gates zero, so every block starts as the identity), a
// zero final layer and caption embedding projection, N(0, 0.02) timestep,
// motion and pad embeddings, Xavier-uniform for every other projection,
// zero biases and unit norm weights.
//
// Thread-safety: mutates the model; call before training starts.
#ifndef LVS_TRAINER_INIT_WEIGHTS_H_
#define LVS_TRAINER_INIT_WEIGHTS_H_

#include <string>

#include "absl/status/status.h"
#include "model/dit/dit.h"

namespace lvs::trainer {

// How one parameter (checkpoint name) is initialised.
enum class InitRule { kZeros, kOnes, kNormal002, kXavierUniform };

// The rule for parameter `name` of a MultiScaleNextDiT (1-D parameters are
// norm weights (ones) or biases (zeros) unless named otherwise).
InitRule InitRuleFor(const std::string& name, int64_t dims);

// Re-initialises every parameter of `model` by InitRuleFor, drawing from the
// global generator (seed it first for a deterministic model).
absl::Status InitializeLikeReference(dit::MultiScaleNextDiT& model);

}  // namespace lvs::trainer

#endif  // LVS_TRAINER_INIT_WEIGHTS_H_
