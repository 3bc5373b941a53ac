// Adapts a loaded MultiScaleNextDiT to the sampler's velocity function.
//
// Thread-safety: the returned function holds a reference to the model and may
// be called concurrently when the model's forward may (see model/dit/dit.h).
#ifndef LVS_MODEL_PIPELINE_DIT_VELOCITY_H_
#define LVS_MODEL_PIPELINE_DIT_VELOCITY_H_

#include "model/dit/dit.h"
#include "model/sampler/multi_cfg.h"

namespace lvs::pipeline {

// Returns a sampler::VelocityFn calling `model->Forward` with the call's patch
// combination (P, pF); errors (unknown patch combination, bad shapes, out of
// memory) come back as the DiT's Status.
sampler::VelocityFn DiTVelocity(dit::MultiScaleNextDiT model);

// Checks before sampling that every patch combination `config` can use
// exists in `model`'s checkpoint and fits a latent of `latent_sizes`
// [B, C, F, H, W] (H and W multiples of P; F 1 or a multiple of pF), so a
// multi-scale run fails at once instead of at its first call with that
// combination. InvalidArgument names the combination and the rule.
absl::Status CheckSampleConfigForDiT(const sampler::SampleConfig& config,
                                     const dit::MultiScaleNextDiT& model,
                                     at::IntArrayRef latent_sizes);

}  // namespace lvs::pipeline

#endif  // LVS_MODEL_PIPELINE_DIT_VELOCITY_H_
