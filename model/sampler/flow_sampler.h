// Lumina-Video's flow-matching sampler: Euler on the shifted time grid,
// driving the multi-CFG velocity (reference: transport `Sampler.sample_ode`
// with torchdiffeq's fixed-grid Euler; golden README 4.7, 6, 8.3).
//
// State and update are float32: `x_{i+1} = x_i + (t_{i+1} - t_i) * v_i`
// (dt rounded to float32, product and sum rounded separately), where v_i is
// the guided velocity computed on `x_i.to(dtype)` at `t_i.to(dtype)` and
// widened back to float32. The state holds only the positive samples.
// Between steps the sampler reports progress and checks for cancellation.
//
// Thread-safety: SampleFlow is reentrant; callbacks run on the caller's
// thread.
#ifndef LVS_MODEL_SAMPLER_FLOW_SAMPLER_H_
#define LVS_MODEL_SAMPLER_FLOW_SAMPLER_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "model/sampler/multi_cfg.h"
#include "model/sampler/sample_config.h"
#include "model/sampler/schedule.h"

namespace lvs::sampler {

// Progress after one Euler step.
struct StepInfo {
  int index = 0;              // 0-based step just completed.
  int denoise_steps = 0;      // Steps of the run: grid points N - 1.
  float t = 0;                // Time the model saw (model dtype).
  PatchComb patch;            // Patch combination used.
  bool guided = false;        // The negative branch ran.
  bool renormalized = false;  // Guidance renorm fired.
  double elapsed_s = 0;       // Seconds since sampling started.
};

// How SampleFlow runs.
struct SamplerOptions {
  // The model dtype: float32 or bfloat16.
  torch::ScalarType dtype = torch::kFloat32;
  // Grid points N; 0 uses the config's `grid_points`.
  int grid_points = 0;
  // Keep every state (xs[0] = z, ..., xs[N-1] = result), float32.
  bool keep_states = false;
  // Called after each step (may be empty).
  std::function<void(const StepInfo&)> on_step;
  // Polled before each step; returning true stops with CANCELLED (may be
  // empty).
  std::function<bool()> cancelled;
};

// What SampleFlow returns.
struct SampleResult {
  torch::Tensor latent;               // Final state [B, C, F, H, W], float32.
  std::vector<torch::Tensor> states;  // With keep_states: all N states.
  std::vector<ModelCall> calls;       // The N - 1 resolved model calls.
};

// Integrates from noise `z` [B, C, F, H, W] (any float dtype; widened to
// float32; pass it in the model dtype to mirror the pipeline, whose z is drawn
// in the model dtype) with `model` under `config` and `guidance`. Returns
// CANCELLED when `options.cancelled` fires, the model's error when a call
// fails, RESOURCE_EXHAUSTED on out-of-memory.
absl::StatusOr<SampleResult> SampleFlow(const VelocityFn& model,
                                        const SampleConfig& config,
                                        const torch::Tensor& z,
                                        const Guidance& guidance,
                                        const SamplerOptions& options);

// Returns the TimePrecision of model dtype `dtype` (float32 or bfloat16), or
// InvalidArgument.
absl::StatusOr<TimePrecision> TimePrecisionOf(torch::ScalarType dtype);

// Returns the initial latent of `shape` for `seed` (the portable generator of
// noise.h, element order row-major), converted to `dtype` on `device`.
torch::Tensor InitialNoise(uint64_t seed, at::IntArrayRef shape,
                           torch::ScalarType dtype = torch::kFloat32,
                           torch::Device device = torch::kCPU);

}  // namespace lvs::sampler

#endif  // LVS_MODEL_SAMPLER_FLOW_SAMPLER_H_
