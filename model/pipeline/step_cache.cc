#include "model/pipeline/step_cache.h"

#include <algorithm>
#include <utility>

#include "model/common/torch_status.h"

namespace lvs::pipeline {
namespace {

// This rank's rows of branch `b` in the local hidden state: the branch's
// token range of the whole sequence intersected with this rank's share.
std::pair<int64_t, int64_t> LocalRange(const dit::DiTForward& f, int b,
                                       int64_t rows_per_branch) {
  const std::vector<int64_t>& cu = f.layout.cu_seqlens;
  const int64_t lo = std::max(cu[b * rows_per_branch], f.token_begin);
  const int64_t hi = std::min(cu[(b + 1) * rows_per_branch], f.token_end);
  if (hi <= lo) return {0, 0};
  return {lo - f.token_begin, hi - lo};
}

}  // namespace

bool StepCache::CanSkip(const torch::Tensor& modulated,
                        const dit::DiTForward& f, int branches,
                        int64_t rows_per_branch) {
  // [branches, 2]: sum |m - m_prev| and sum |m_prev| per branch.
  torch::Tensor sums =
      torch::zeros({branches, 2}, modulated.options().dtype(torch::kFloat64));
  for (int b = 0; b < branches; ++b) {
    const auto [start, length] = LocalRange(f, b, rows_per_branch);
    if (length == 0) continue;
    torch::Tensor m = modulated.narrow(0, start, length).to(torch::kFloat32);
    const torch::Tensor& prev = prev_modulated_[b];
    sums[b][0].copy_((m - prev).abs().sum().to(torch::kFloat64));
    sums[b][1].copy_(prev.abs().sum().to(torch::kFloat64));
  }
  if (f.parallel != nullptr) f.parallel->AllReduceSum(sums);
  sums = sums.cpu();
  for (int b = 0; b < branches; ++b) {
    const double diff = sums[b][0].item<double>();
    const double base = sums[b][1].item<double>();
    if (!(base > 0) || !(diff / base < threshold_)) return false;
  }
  return true;
}

void StepCache::Remember(const torch::Tensor& modulated,
                         const dit::DiTForward& f, int branches,
                         int64_t rows_per_branch) {
  prev_modulated_.assign(branches, torch::Tensor());
  for (int b = 0; b < branches; ++b) {
    const auto [start, length] = LocalRange(f, b, rows_per_branch);
    prev_modulated_[b] =
        modulated.narrow(0, start, length).to(torch::kFloat32).clone();
  }
}

absl::StatusOr<torch::Tensor> StepCache::Forward(
    dit::MultiScaleNextDiT& model, const torch::Tensor& x,
    const torch::Tensor& t, const torch::Tensor& cap_feats,
    const torch::Tensor& cap_mask, const torch::Tensor& motion_score,
    const sampler::PatchComb& patch, int branches, bool guided,
    bool always_compute, dit::AttentionParallel* parallel) {
  if (branches < 1 || x.dim() != 5 || x.size(0) % branches != 0) {
    return absl::InvalidArgumentError(
        "step cache: the batch must split into equal CFG branches");
  }
  absl::Status valid =
      model->ValidateInputs(x.unbind(0), t, cap_feats, cap_mask, motion_score,
                            patch.patch, patch.f_patch);
  if (!valid.ok()) return valid;
  try {
    torch::NoGradGuard no_grad;
    if (valid_ &&
        (patch_.patch != patch.patch || patch_.f_patch != patch.f_patch ||
         guided_ != guided || branches_ != branches)) {
      valid_ = false;  // New phase: nothing cached applies.
    }
    std::unique_ptr<dit::DiTForward> f =
        model->BeginForward(x.unbind(0), t, cap_feats, cap_mask, motion_score,
                            patch.patch, patch.f_patch, parallel);
    const int64_t rows = x.size(0) / branches;
    const bool caching = threshold_ > 0;
    torch::Tensor modulated;
    if (caching) modulated = model->FirstBlockModulatedInput(*f);
    const bool skip = caching && valid_ && !always_compute &&
                      CanSkip(modulated, *f, branches, rows);
    model->RunBlocks(*f, 0, 1);
    if (skip) {
      f->h = f->h + residual_;
      counts_.cached += branches;
    } else {
      const torch::Tensor first = f->h;
      model->RunBlocks(*f, 1, model->num_layers());
      counts_.computed += branches;
      if (caching) {
        residual_ = f->h - first;
        Remember(modulated, *f, branches, rows);
        valid_ = true;
        patch_ = patch;
        guided_ = guided;
        branches_ = branches;
      }
    }
    return torch::stack(model->FinishForward(*f), 0);
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e, "MultiScaleNextDiT");
  }
}

sampler::VelocityFn CachedDiTVelocity(dit::MultiScaleNextDiT model,
                                      double threshold, int64_t batch,
                                      int total_calls,
                                      std::shared_ptr<ForwardCounts> counts) {
  auto cache = std::make_shared<StepCache>(threshold);
  auto call = std::make_shared<int>(0);
  return [model, cache, call, batch, total_calls, counts](
             const torch::Tensor& x, const torch::Tensor& t,
             const torch::Tensor& cap_feats, const torch::Tensor& cap_mask,
             const torch::Tensor& motion_score,
             const sampler::PatchComb& patch) mutable
         -> absl::StatusOr<torch::Tensor> {
    const int index = (*call)++;
    const bool guided = x.dim() == 5 && x.size(0) == 2 * batch;
    const bool edge = index == 0 || index + 1 >= total_calls;
    absl::StatusOr<torch::Tensor> v =
        cache->Forward(model, x, t, cap_feats, cap_mask, motion_score, patch,
                       guided ? 2 : 1, guided, edge);
    if (counts) *counts = cache->counts();
    return v;
  };
}

}  // namespace lvs::pipeline
