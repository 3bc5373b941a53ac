// Classifier-free guidance as Lumina-Video's `forward_with_multi_cfg`
// (golden README 8.3, reference brief A.5), for a batch of positive latents.
//
// For one model call: the guidance batch is [positive, negative] while the
// resolved cfg is > 0 and [positive] otherwise; the negative branch runs on
// the *positive latent* with the negative caption and negative motion score;
// the output is widened to float32 and combined as `pos + cfg * (pos - neg)`;
// with renorm > 0 a sample whose guided norm (over C, F, H, W) is
// `>= renorm * ||pos||` is scaled down to that norm; the result is rounded to
// the latent's dtype (the reference writes it into a clone of the bf16
// input). Unlike the reference, the ODE state holds only the positive rows
// (the reference's negative rows only carry meaningless values).
//
// Thread-safety: functions are reentrant; the model function decides whether
// concurrent calls are safe.
#ifndef LVS_MODEL_SAMPLER_MULTI_CFG_H_
#define LVS_MODEL_SAMPLER_MULTI_CFG_H_

#include <torch/torch.h>

#include <functional>

#include "absl/status/statusor.h"
#include "model/sampler/sample_config.h"
#include "model/sampler/schedule.h"

namespace lvs::sampler {

// The velocity model (the DiT's forward): x [B, C, F, H, W] and t [B] in the
// model dtype, cap_feats [B, L, Dc], cap_mask [B, L], motion_score [B] in
// the model dtype, and the patch combination. Returns [B, C, F, H, W].
using VelocityFn = std::function<absl::StatusOr<torch::Tensor>(
    const torch::Tensor& x, const torch::Tensor& t,
    const torch::Tensor& cap_feats, const torch::Tensor& cap_mask,
    const torch::Tensor& motion_score, const PatchComb& patch)>;

// The captions of a guided batch of B samples: rows [0, B) are the positive
// captions, rows [B, 2B) the negative ones (one padded encoder batch).
struct Guidance {
  torch::Tensor cap_feats;  // [2B, L, Dc], in the model dtype.
  torch::Tensor cap_mask;   // [2B, L], nonzero = valid token.
};

// The velocity of one call with what guidance did.
struct GuidedVelocity {
  torch::Tensor velocity;     // [B, C, F, H, W] in x's dtype.
  bool guided = false;        // The negative branch ran.
  bool renormalized = false;  // Renorm fired for at least one sample.
  double pos_norm = 0;        // ||pos|| of sample 0 (0 when unguided).
  double guided_norm = 0;     // ||pos + cfg (pos - neg)|| of sample 0.
};

// Evaluates `model` at positive latents `x` [B, ...] (model dtype) and time
// `t` [B] (model dtype) with the values resolved in `call` (patch, cfg,
// motion scores) and guidance cap `renorm` (<= 0: off). Errors from the
// model pass through; shape mismatches give InvalidArgument.
absl::StatusOr<GuidedVelocity> MultiCfgVelocity(
    const VelocityFn& model, const torch::Tensor& x, const torch::Tensor& t,
    const Guidance& guidance, const ModelCall& call, double renorm);

// Combines float32 model outputs: `pos + cfg * (pos - neg)` then the renorm
// rule (exposed for tests). `pos`, `neg` [B, ...] float32. Sets the flags
// and norms of `out` (all but `velocity`, which gets the float32 result).
void CombineGuidance(const torch::Tensor& pos, const torch::Tensor& neg,
                     double cfg, double renorm, GuidedVelocity& out);

}  // namespace lvs::sampler

#endif  // LVS_MODEL_SAMPLER_MULTI_CFG_H_
