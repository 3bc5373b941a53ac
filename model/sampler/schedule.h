// The sampling time grid and the per-call resolution of a sample config.
//
// The grid is `linspace(0, 1, N)` in float32 shifted by `t / (t + s - s*t)`
// (golden README 8.3), computed here with the exact float32 operations of the
// reference (the CPU linspace kernel of its torch build, then one rounding per
// operation), so the same grid comes out on every machine and device and the
// golden grids are reproduced bit for bit. The N - 1 model calls
// happen at the first N - 1 grid points; the model sees the time in its own
// dtype, and the time-aware config values are resolved from that rounded time
// (the bf16 edge case of README 4.6: 0.19999996 is 0.2002 in bfloat16).
//
// Torch-free. Thread-safety: pure functions.
#ifndef LVS_MODEL_SAMPLER_SCHEDULE_H_
#define LVS_MODEL_SAMPLER_SCHEDULE_H_

#include <vector>

#include "absl/status/statusor.h"
#include "model/sampler/sample_config.h"

namespace lvs::sampler {

// The floating-point format the model runs in (and sees the time in).
enum class TimePrecision { kFloat32, kBFloat16 };

// Rounds a float32 time to `precision` (bfloat16: round to nearest even, as
// torch's float -> bfloat16 conversion) and returns it as a float.
float RoundTime(float t, TimePrecision precision);

// Returns the float32 grid of `grid_points` points for shift `time_shift`.
// `grid_points` must be >= 2.
absl::StatusOr<std::vector<float>> ShiftedTimeGrid(int grid_points,
                                                   double time_shift);

// What one model call uses.
struct ModelCall {
  int index = 0;          // 0-based call (= Euler step) index.
  float t_grid = 0;       // Grid time t_i (float32).
  float t_model = 0;      // t_i in the model precision (what the DiT sees).
  float dt = 0;           // t_{i+1} - t_i in float32.
  PatchComb patch;        // Resolved patch combination.
  double cfg = 0;         // Resolved guidance scale (> 0: guided).
  double motion_pos = 0;  // Resolved positive motion score.
  double motion_neg = 0;  // Resolved negative motion score.

  // True when the negative (guidance) branch runs.
  bool guided() const { return cfg > 0; }
};

// Resolves the time-aware values of `config` at model time `t_model`.
ModelCall ResolveAt(const SampleConfig& config, float t_model);

// Plans the `grid_points - 1` model calls (denoising steps) of a run of
// `grid_points` grid points (pass config.grid_points for the config's own).
absl::StatusOr<std::vector<ModelCall>> PlanModelCalls(
    const SampleConfig& config, int grid_points, TimePrecision precision);

}  // namespace lvs::sampler

#endif  // LVS_MODEL_SAMPLER_SCHEDULE_H_
