// Adapts a loaded MultiScaleNextDiT to the sampler's velocity function.
//
// Thread-safety: the returned function holds a reference to the model and may
// be called concurrently when the model's forward may (see model/dit/dit.h).
#ifndef LVS_MODEL_SAMPLER_DIT_VELOCITY_H_
#define LVS_MODEL_SAMPLER_DIT_VELOCITY_H_

#include "model/dit/dit.h"
#include "model/sampler/multi_cfg.h"

namespace lvs::sampler {

// Returns a VelocityFn calling `model->Forward` with the call's patch
// combination (P, pF); errors (unknown patch combination, bad shapes, out of
// memory) come back as the DiT's Status.
VelocityFn DiTVelocity(dit::MultiScaleNextDiT model);

}  // namespace lvs::sampler

#endif  // LVS_MODEL_SAMPLER_DIT_VELOCITY_H_
