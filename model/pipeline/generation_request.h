// A generation request of the Lumina-Video pipeline and its validation
// against the loaded models' limits (golden README 8.3, 8.4; reference brief
// B.1).
//
// Validation turns a request into a GenerationPlan: the resolved sample
// config and step count, the latent shape, and the frame count the VAE will
// actually produce (latent frames = frames // 4; n latents decode to 4n
// frames when n is even and 4n - 3 when n is odd), so callers can tell the
// user up front. Every rejection is an InvalidArgument naming the field and
// the rule.
//
// Torch-free. Thread-safety: plain values and pure functions.
#ifndef LVS_MODEL_PIPELINE_GENERATION_REQUEST_H_
#define LVS_MODEL_PIPELINE_GENERATION_REQUEST_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/sampler/sample_config.h"

namespace lvs::pipeline {

// The floating-point format the models run in.
enum class Precision {
  kDefault,  // bfloat16 on CUDA and AMX-BF16 CPUs, else float32.
  kFloat32,
  kBFloat16,
};

// Parses "bf16" / "bfloat16" / "fp32" / "float32" / "" (kDefault); errors
// name the field `precision`.
absl::StatusOr<Precision> ParsePrecision(absl::string_view text);

// Whether kDefault means bfloat16: on CUDA, and on a CPU with AMX-BF16
// (oneDNN runs bf16 matmuls and convolutions there several times faster than
// float32); float32 on other CPUs.
bool DefaultsToBf16(bool cuda, bool cpu_amx_bf16);

// Returns "bf16" or "fp32" ("default" for kDefault).
std::string PrecisionName(Precision precision);

// One prompt-to-video request.
struct GenerationRequest {
  std::string prompt;
  std::string negative_prompt;  // "" by default, as the reference.
  int width = 0;                // Pixels, a multiple of 32.
  int height = 0;               // Pixels, a multiple of 32.
  int frames = 96;              // Requested frames; latents = frames / 4.
  int fps = 24;
  // Built-in sample config name (sample_config.h); ignored when `config` is
  // set.
  std::string sample_config = "f24F96R960-MultiScale";
  // An explicit config instead of a named one.
  std::optional<sampler::SampleConfig> config;
  // Grid points N (N - 1 denoising steps); 0 takes the config's.
  int grid_points = 0;
  uint64_t seed = 0;
  Precision precision = Precision::kDefault;
  // Step caching (pipeline/step_cache.h): relative change of the first DiT
  // block's input below which the other blocks are reused; 0 = off, [0, 1].
  double cache_threshold = 0;
};

// What the loaded models allow.
struct ModelLimits {
  // Patch combinations the DiT has weights for.
  std::vector<sampler::PatchComb> patches;
  // RoPE position limits (time, height, width), in patches.
  std::array<int64_t, 3> rope_max_positions = {64, 128, 128};
  // Latent channels of the DiT/VAE.
  int64_t latent_channels = 16;
  // VAE compression: pixels per latent (spatial) and frames per latent.
  int64_t spatial_factor = 8;
  int64_t temporal_factor = 4;
  // Pixel budget side R: (W/32) * (H/32) may not exceed (R/32)^2 (the
  // reference's crop-size list). A config named "...R<n>..." uses n instead.
  int64_t max_resolution = 960;
  // Longest prompt accepted, in bytes (the tokenizer keeps 256 ids anyway).
  int64_t max_prompt_bytes = 8192;
  // Frame-rate range.
  int max_fps = 120;
  // Largest grid point count.
  int max_grid_points = 1000;
};

// A validated request with everything resolved.
struct GenerationPlan {
  GenerationRequest request;     // As given (config resolved below).
  sampler::SampleConfig config;  // The config that runs.
  int grid_points = 0;           // Grid points N (N - 1 steps).
  int64_t latent_frames = 0;     // frames / 4.
  int64_t output_frames = 0;     // 4n (n even) or 4n - 3 (n odd).
  std::array<int64_t, 5> latent_shape = {0, 0, 0, 0,
                                         0};  // [1, C, n, H/8, W/8].
  Precision precision = Precision::kFloat32;  // Never kDefault.
};

// Parses "WxH" (e.g. "1248x704") into width and height; errors name the
// field `resolution`.
absl::StatusOr<std::array<int, 2>> ParseResolution(absl::string_view text);

// Returns the pixel budget side R of `config` (from "R<n>" in its name) or
// `limits.max_resolution`.
int64_t ResolutionBudget(const sampler::SampleConfig& config,
                         const ModelLimits& limits);

// Validates every field of `request` against `limits`; `bf16_default`
// (DefaultsToBf16 of the device) selects the default precision. Returns the
// plan or InvalidArgument naming the field.
absl::StatusOr<GenerationPlan> PlanGeneration(const GenerationRequest& request,
                                              const ModelLimits& limits,
                                              bool bf16_default);

}  // namespace lvs::pipeline

#endif  // LVS_MODEL_PIPELINE_GENERATION_REQUEST_H_
