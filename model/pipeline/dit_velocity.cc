#include "model/pipeline/dit_velocity.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lvs::pipeline {

sampler::VelocityFn DiTVelocity(dit::MultiScaleNextDiT model) {
  return [model](const torch::Tensor& x, const torch::Tensor& t,
                 const torch::Tensor& cap_feats, const torch::Tensor& cap_mask,
                 const torch::Tensor& motion_score,
                 const sampler::PatchComb& patch) mutable
         -> absl::StatusOr<torch::Tensor> {
    return model->Forward(x, t, cap_feats, cap_mask, motion_score, patch.patch,
                          patch.f_patch);
  };
}

absl::Status CheckSampleConfigForDiT(const sampler::SampleConfig& config,
                                     const dit::MultiScaleNextDiT& model,
                                     at::IntArrayRef latent_sizes) {
  if (latent_sizes.size() != 5) {
    return absl::InvalidArgumentError(
        "sample config check: latent must be [B, C, F, H, W]");
  }
  const int64_t f = latent_sizes[2], h = latent_sizes[3], w = latent_sizes[4];
  std::vector<sampler::PatchComb> used = {config.patch.default_value};
  for (const auto& [threshold, patch] : config.patch.steps)
    used.push_back(patch);
  for (const sampler::PatchComb& p : used) {
    const std::string where =
        absl::StrCat("sample config \"", config.name, "\": patch combination ",
                     p.ToString());
    if (!model->HasPatch(p.patch, p.f_patch)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " (DiT key ", p.DiTKey(),
                       ") is not in the checkpoint, which "
                       "has ",
                       absl::StrJoin(model->config().patch_keys(), ", ")));
    }
    if (h % p.patch != 0 || w % p.patch != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": latent height ", h, " and width ", w,
                       " must be multiples of the spatial patch ", p.patch));
    }
    if (f != 1 && f % p.f_patch != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": latent frames ", f,
                       " must be 1 or a multiple of the "
                       "temporal patch ",
                       p.f_patch));
    }
  }
  return absl::OkStatus();
}

}  // namespace lvs::pipeline
