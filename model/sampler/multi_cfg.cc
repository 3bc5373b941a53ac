#include "model/sampler/multi_cfg.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace lvs::sampler {
namespace {

// Norm over every axis but the first, kept as [B, 1, ..., 1].
torch::Tensor SampleNorms(const torch::Tensor& v) {
  std::vector<int64_t> dims;
  for (int64_t d = 1; d < v.dim(); ++d) dims.push_back(d);
  return at::linalg_vector_norm(v, 2, dims, /*keepdim=*/true, c10::nullopt);
}

absl::Status CheckShapes(const torch::Tensor& x, const torch::Tensor& t,
                         const Guidance& g) {
  if (x.dim() != 5) {
    return absl::InvalidArgumentError(absl::StrCat(
        "guidance: latent must be [B, C, F, H, W], got ", x.dim(), " dims"));
  }
  const int64_t b = x.size(0);
  if (t.dim() != 1 || t.size(0) != b) {
    return absl::InvalidArgumentError(
        absl::StrCat("guidance: t must be [", b, "]"));
  }
  if (!g.cap_feats.defined() || g.cap_feats.dim() != 3 ||
      g.cap_feats.size(0) != 2 * b) {
    return absl::InvalidArgumentError(
        absl::StrCat("guidance: cap_feats must be [2B = ", 2 * b,
                     ", L, D] (positive rows, then negative rows)"));
  }
  if (!g.cap_mask.defined() || g.cap_mask.dim() != 2 ||
      g.cap_mask.size(0) != 2 * b ||
      g.cap_mask.size(1) != g.cap_feats.size(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "guidance: cap_mask must be [", 2 * b, ", ", g.cap_feats.size(1), "]"));
  }
  return absl::OkStatus();
}

absl::Status CheckOutput(const torch::Tensor& v, const torch::Tensor& x) {
  if (!v.defined() || v.sizes() != x.sizes()) {
    return absl::InternalError(
        absl::StrCat("guidance: model returned shape ",
                     v.defined() ? c10::str(v.sizes()) : std::string("(none)"),
                     " for input ", c10::str(x.sizes())));
  }
  return absl::OkStatus();
}

}  // namespace

void CombineGuidance(const torch::Tensor& pos, const torch::Tensor& neg,
                     double cfg, double renorm, GuidedVelocity& out) {
  // pos_out = pos + cfg * (pos - neg), float32, one rounding per operation.
  torch::Tensor guided = pos + (pos - neg).mul(cfg);
  out.guided = true;
  out.renormalized = false;
  if (renorm > 0) {
    torch::Tensor pos_norm = SampleNorms(pos);      // [B, 1, 1, 1, 1]
    torch::Tensor max_norm = pos_norm.mul(renorm);  // [B, 1, 1, 1, 1]
    torch::Tensor new_norm = SampleNorms(guided);   // [B, 1, 1, 1, 1]
    torch::Tensor keep = new_norm.lt(max_norm);     // renorm on >=
    guided = torch::where(keep, guided, guided * (max_norm / new_norm));
    out.renormalized = !keep.all().item<bool>();
    out.pos_norm = pos_norm.flatten()[0].item<double>();
    out.guided_norm = new_norm.flatten()[0].item<double>();
  }
  out.velocity = guided;
}

absl::StatusOr<GuidedVelocity> MultiCfgVelocity(
    const VelocityFn& model, const torch::Tensor& x, const torch::Tensor& t,
    const Guidance& guidance, const ModelCall& call, double renorm) {
  LVS_RETURN_IF_ERROR(CheckShapes(x, t, guidance));
  const int64_t b = x.size(0);
  const auto dtype = x.scalar_type();
  const auto opts = torch::TensorOptions().device(x.device());
  // torch.tensor([motion, negMotion]).to(x): float32, then the model dtype.
  torch::Tensor motion = torch::tensor({static_cast<float>(call.motion_pos),
                                        static_cast<float>(call.motion_neg)},
                                       opts.dtype(torch::kFloat32))
                             .to(dtype);
  GuidedVelocity out;
  if (!call.guided()) {
    LVS_ASSIGN_OR_RETURN(torch::Tensor v,
                         model(x, t, guidance.cap_feats.slice(0, 0, b),
                               guidance.cap_mask.slice(0, 0, b),
                               motion.slice(0, 0, 1).expand({b}), call.patch));
    LVS_RETURN_IF_ERROR(CheckOutput(v, x));
    out.velocity = v.to(dtype);  // The clone of x keeps x's dtype.
    return out;
  }
  // Batch [positive, negative]: the negative rows reuse the positive latent.
  torch::Tensor batch_x = torch::cat({x, x}, 0);
  torch::Tensor batch_t = torch::cat({t, t}, 0);
  torch::Tensor batch_motion = torch::cat(
      {motion.slice(0, 0, 1).expand({b}), motion.slice(0, 1, 2).expand({b})});
  LVS_ASSIGN_OR_RETURN(torch::Tensor v,
                       model(batch_x, batch_t, guidance.cap_feats,
                             guidance.cap_mask, batch_motion, call.patch));
  LVS_RETURN_IF_ERROR(CheckOutput(v, batch_x));
  torch::Tensor v32 = v.to(torch::kFloat32);
  CombineGuidance(v32.slice(0, 0, b), v32.slice(0, b, 2 * b), call.cfg, renorm,
                  out);
  out.velocity = out.velocity.to(dtype);
  return out;
}

}  // namespace lvs::sampler
