#include "model/pipeline/device_group.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/common/torch_status.h"

namespace lvs::pipeline {
namespace {

// Copies every parameter and buffer of `from` into `to` (same names).
void CopyState(const torch::nn::Module& from, const torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  auto src = from.named_parameters(true);
  for (auto& p : to.named_parameters(true)) p.value().copy_(src[p.key()]);
  auto src_b = from.named_buffers(true);
  for (auto& b : to.named_buffers(true)) b.value().copy_(src_b[b.key()]);
}

}  // namespace

parallel::ParallelLayout DeviceGroup::LayoutFor(
    const dit::MultiScaleNextDiT& dit, bool guided) const {
  return parallel::ChooseLayout(size(), dit->config().n_heads, guided);
}

absl::Status DeviceGroup::SyncDiT(const dit::MultiScaleNextDiT& dit) {
  if (!dits_.empty() && dit_source_.get() == dit.get()) {
    return absl::OkStatus();
  }
  runners_.clear();
  dits_.assign(1, dit);
  const torch::Tensor probe = dit->pad_token;
  try {
    for (size_t r = 1; r < devices_.size(); ++r) {
      if (devices_[r] == probe.device()) {
        dits_.push_back(dit);  // Same device: share the weights.
        continue;
      }
      dit::MultiScaleNextDiT copy(dit->config());
      copy->to(devices_[r], probe.scalar_type());
      CopyState(*dit, *copy);
      for (torch::Tensor& p : copy->parameters()) p.requires_grad_(false);
      copy->eval();
      dits_.push_back(copy);
    }
  } catch (const std::exception& e) {
    dits_.clear();
    return common::TorchErrorToStatus(e, "DiT replica");
  }
  dit_source_ = dit;
  return absl::OkStatus();
}

absl::StatusOr<sampler::VelocityFn> DeviceGroup::Velocity(
    const dit::MultiScaleNextDiT& dit, bool guided, double threshold,
    int64_t batch, int total_calls, std::shared_ptr<ForwardCounts> counts) {
  LVS_RETURN_IF_ERROR(SyncDiT(dit));
  const parallel::ParallelLayout layout = LayoutFor(dit, guided);
  std::unique_ptr<parallel::ParallelDiT>& runner = runners_[layout.ToString()];
  if (!runner) {
    std::vector<dit::MultiScaleNextDiT> replicas(
        dits_.begin(), dits_.begin() + layout.ranks());
    std::vector<torch::Device> devices(devices_.begin(),
                                       devices_.begin() + layout.ranks());
    LVS_ASSIGN_OR_RETURN(
        runner, parallel::ParallelDiT::Create(std::move(replicas),
                                              std::move(devices), layout));
  }
  return runner->Velocity(threshold, batch, total_calls, std::move(counts));
}

absl::StatusOr<std::vector<const vae::CogVideoXVae*>> DeviceGroup::VaeHelpers(
    const vae::CogVideoXVae& vae) {
  if (vae_source_ == &vae && vae_dtype_ == vae.options().dtype) {
    return vae_helpers_;
  }
  vae_copies_.clear();
  vae_helpers_.clear();
  for (size_t r = 1; r < devices_.size(); ++r) {
    if (devices_[r] == vae.options().device) {
      vae_helpers_.push_back(&vae);  // Same device: share the weights.
      continue;
    }
    vae::VaeOptions options = vae.options();
    options.device = devices_[r];
    LVS_ASSIGN_OR_RETURN(
        auto copy, vae::CogVideoXVae::CreateRandom(vae.config(), options));
    try {
      CopyState(*vae.model(), *copy->model());
    } catch (const std::exception& e) {
      return common::TorchErrorToStatus(e, "VAE replica");
    }
    vae_helpers_.push_back(copy.get());
    vae_copies_.push_back(std::move(copy));
  }
  vae_source_ = &vae;
  vae_dtype_ = vae.options().dtype;
  return vae_helpers_;
}

}  // namespace lvs::pipeline
