#include "model/sampler/schedule.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace lvs::sampler {

float RoundTime(float t, TimePrecision precision) {
  if (precision == TimePrecision::kFloat32 || std::isnan(t)) return t;
  uint32_t bits;
  std::memcpy(&bits, &t, sizeof(bits));
  // Round to nearest, ties to even, on the upper 16 bits (c10::BFloat16).
  const uint32_t rounding_bias = 0x7fffu + ((bits >> 16) & 1u);
  bits = (bits + rounding_bias) & 0xffff0000u;
  float out;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
}

namespace {

// torch.linspace(0, 1, n) in float32 as the reference's CPU build computes
// it (AVX2 kernel of ATen's linspace): the first n - n % 16 points in 8-lane
// vectors, two per iteration, each vector from a base value `base + j*step`
// (lane j, product and sum rounded separately); the base and the scalar tail
// use `start + step*idx` below n/2 and `end - step*(n - idx - 1)` above, as
// fused multiply-adds. Reproduces the golden grids bit for bit.
std::vector<float> Linspace01(int n) {
  const float start = 0.0f, end = 1.0f;
  const float step = (end - start) / static_cast<float>(n - 1);
  const int halfway = n / 2;
  auto point = [&](int idx) {
    return idx < halfway
               ? std::fma(step, static_cast<float>(idx), start)
               : std::fma(-step, static_cast<float>(n - idx - 1), end);
  };
  constexpr int kLanes = 8;
  std::vector<float> out(n);
  int i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    for (int v = i; v < i + 2 * kLanes; v += kLanes) {
      const float base = point(v);
      for (int j = 0; j < kLanes; ++j) {
        volatile float offset = static_cast<float>(j) * step;
        out[v + j] = base + offset;
      }
    }
  }
  for (; i < n; ++i) out[i] = point(i);
  return out;
}

}  // namespace

absl::StatusOr<std::vector<float>> ShiftedTimeGrid(int grid_points,
                                                   double time_shift) {
  if (grid_points < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("time grid: grid_points must be >= 2 (grid points), got ",
                     grid_points));
  }
  if (!(time_shift > 0) || !std::isfinite(time_shift)) {
    return absl::InvalidArgumentError(
        absl::StrCat("time grid: time_shift must be > 0, got ", time_shift));
  }
  const float s = static_cast<float>(time_shift);
  std::vector<float> grid = Linspace01(grid_points);
  // t / (t + s - s * t), one float32 rounding per operation; `volatile`
  // keeps every intermediate separately rounded (no FMA contraction on
  // targets that have it).
  for (float& t : grid) {
    volatile float sum = t + s;
    volatile float prod = s * t;
    volatile float den = sum - prod;
    t = t / den;
  }
  return grid;
}

ModelCall ResolveAt(const SampleConfig& config, float t_model) {
  const double t = t_model;  // The reference compares t.item() (a double).
  ModelCall call;
  call.t_model = t_model;
  call.patch = config.patch.At(t);
  call.cfg = config.cfg.At(t);
  call.motion_pos = config.motion.At(t);
  call.motion_neg = config.neg_motion.At(t);
  return call;
}

absl::StatusOr<std::vector<ModelCall>> PlanModelCalls(
    const SampleConfig& config, int grid_points, TimePrecision precision) {
  LVS_ASSIGN_OR_RETURN(std::vector<float> grid,
                       ShiftedTimeGrid(grid_points, config.time_shift));
  std::vector<ModelCall> calls;
  calls.reserve(grid_points - 1);
  for (int i = 0; i + 1 < grid_points; ++i) {
    ModelCall call = ResolveAt(config, RoundTime(grid[i], precision));
    call.index = i;
    call.t_grid = grid[i];
    volatile float dt = grid[i + 1] - grid[i];
    call.dt = dt;
    calls.push_back(call);
  }
  return calls;
}

}  // namespace lvs::sampler
