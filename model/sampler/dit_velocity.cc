#include "model/sampler/dit_velocity.h"

namespace lvs::sampler {

VelocityFn DiTVelocity(dit::MultiScaleNextDiT model) {
  return
      [model](const torch::Tensor& x, const torch::Tensor& t,
              const torch::Tensor& cap_feats, const torch::Tensor& cap_mask,
              const torch::Tensor& motion_score,
              const PatchComb& patch) mutable -> absl::StatusOr<torch::Tensor> {
        return model->Forward(x, t, cap_feats, cap_mask, motion_score,
                              patch.patch, patch.f_patch);
      };
}

}  // namespace lvs::sampler
