#include "model/sampler/flow_sampler.h"

#include <chrono>
#include <exception>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/common/torch_status.h"
#include "model/sampler/noise.h"

namespace lvs::sampler {
namespace {

// One Euler step; returns the new state and what guidance did.
absl::StatusOr<GuidedVelocity> EulerStep(const VelocityFn& model,
                                         torch::Tensor& x,
                                         const Guidance& guidance,
                                         const ModelCall& call, double renorm,
                                         torch::ScalarType dtype) {
  const int64_t b = x.size(0);
  // ones(B) * t, then .to(dtype): what the reference's ODE function feeds.
  torch::Tensor t =
      torch::full({b}, call.t_grid, x.options().dtype(torch::kFloat32))
          .to(dtype);
  LVS_ASSIGN_OR_RETURN(
      GuidedVelocity v,
      MultiCfgVelocity(model, x.to(dtype), t, guidance, call, renorm));
  // y1 = y0 + dt * f0 with dt a float32 scalar (two roundings, no FMA).
  x = x + v.velocity.to(torch::kFloat32).mul(call.dt);
  return v;
}

}  // namespace

absl::StatusOr<TimePrecision> TimePrecisionOf(torch::ScalarType dtype) {
  if (dtype == torch::kFloat32) return TimePrecision::kFloat32;
  if (dtype == torch::kBFloat16) return TimePrecision::kBFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("sampler: model dtype must be float32 or bfloat16, got ",
                   c10::toString(dtype)));
}

absl::StatusOr<SampleResult> SampleFlow(const VelocityFn& model,
                                        const SampleConfig& config,
                                        const torch::Tensor& z,
                                        const Guidance& guidance,
                                        const SamplerOptions& options) {
  LVS_ASSIGN_OR_RETURN(TimePrecision precision, TimePrecisionOf(options.dtype));
  LVS_RETURN_IF_ERROR(ValidateSampleConfig(config));
  if (!z.defined() || z.dim() != 5 || !z.is_floating_point()) {
    return absl::InvalidArgumentError(
        "sampler: z must be a floating-point [B, C, F, H, W] tensor");
  }
  const int grid_points =
      options.grid_points > 0 ? options.grid_points : config.grid_points;
  SampleResult result;
  LVS_ASSIGN_OR_RETURN(result.calls,
                       PlanModelCalls(config, grid_points, precision));
  const int denoise_steps = static_cast<int>(result.calls.size());
  const auto start = std::chrono::steady_clock::now();
  int step = 0;
  try {
    torch::NoGradGuard no_grad;
    torch::Tensor x = z.to(torch::kFloat32);
    if (options.keep_states) result.states.push_back(x);
    for (const ModelCall& call : result.calls) {
      step = call.index;
      if (options.cancelled && options.cancelled()) {
        return absl::CancelledError(
            absl::StrCat("sampling cancelled before step ", call.index, " of ",
                         denoise_steps));
      }
      LVS_ASSIGN_OR_RETURN(
          GuidedVelocity v,
          EulerStep(model, x, guidance, call, config.renorm, options.dtype));
      if (options.keep_states) result.states.push_back(x);
      if (options.on_step) {
        StepInfo info;
        info.index = call.index;
        info.denoise_steps = denoise_steps;
        info.t = call.t_model;
        info.patch = call.patch;
        info.guided = v.guided;
        info.renormalized = v.renormalized;
        info.elapsed_s = std::chrono::duration<double>(
                             std::chrono::steady_clock::now() - start)
                             .count();
        options.on_step(info);
      }
    }
    result.latent = x;
  } catch (const std::exception& e) {
    // c10::Error, or std::runtime_error that some LibTorch builds throw from
    // shape checks.
    return common::TorchErrorToStatus(e, absl::StrCat("sampler step ", step));
  }
  return result;
}

torch::Tensor InitialNoise(uint64_t seed, at::IntArrayRef shape,
                           torch::ScalarType dtype, torch::Device device) {
  torch::Tensor noise = torch::empty(shape, torch::kFloat32);
  FillGaussianNoise(seed, 0, noise.numel(), noise.data_ptr<float>());
  return noise.to(device, dtype);
}

}  // namespace lvs::sampler
