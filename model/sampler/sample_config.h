// Sample configurations of Lumina-Video's flow sampler, as data.
//
// A sample config names the patch combination, guidance scale, motion scores
// and step count of one generation. Patch combination, cfg, motion and
// negative motion are *time-aware*: `(default, (thr1, v1), (thr2, v2), ...)`
// starts at `default` and, walking the pairs in order, takes `v` while
// `t >= thr`, stopping at the first pair with `t < thr` (golden README 8.3).
// The four configs the reference ships are built in; user configs use the
// same syntax, parsed from strings such as `("2x4",(0.03,"2x2"),(0.125,"1x2"))`
// or `(20,(0.2,0))`.
//
// Torch-free. Thread-safety: values are immutable after construction; every
// function is safe to call concurrently.
#ifndef LVS_MODEL_SAMPLER_SAMPLE_CONFIG_H_
#define LVS_MODEL_SAMPLER_SAMPLE_CONFIG_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/dit/patch_comb.h"
#include "nlohmann/json_fwd.hpp"

namespace lvs::sampler {

// The temporal x spatial patch combination, written "FxP" (model/dit).
using dit::PatchComb;

// A value that changes with the sampling time t (0 = noise, 1 = data).
template <typename T>
struct TimeAware {
  T default_value{};
  // (threshold, value) pairs, walked in order.
  std::vector<std::pair<double, T>> steps;

  // Returns the value at time `t`: `default_value`, then each pair's value
  // while `t >= threshold`, stopping at the first `t < threshold`.
  T At(double t) const {
    T value = default_value;
    for (const auto& [threshold, v] : steps) {
      if (!(t >= threshold)) break;
      value = v;
    }
    return value;
  }
  bool operator==(const TimeAware& o) const {
    return default_value == o.default_value && steps == o.steps;
  }
};

// One sample configuration (the fields of Lumina-Video's
// `configs/sample/__init__.py`).
struct SampleConfig {
  std::string name;              // Config name, or "custom".
  TimeAware<PatchComb> patch;    // "P": patch combination per time.
  int grid_points = 70;          // "step": grid points N (N - 1 steps).
  double time_shift = 24.0;      // "ts": grid shift s in t/(t + s - s t).
  double renorm = -1;            // "renorm": guidance norm cap; <= 0 off.
  TimeAware<double> cfg;         // "cfg": guidance scale; <= 0 unguided.
  TimeAware<double> motion;      // "motion": positive motion score.
  TimeAware<double> neg_motion;  // "negMotion": negative motion score.

  bool operator==(const SampleConfig& o) const;
};

// Returns the names of the built-in configs, in a fixed order.
std::vector<std::string> NamedSampleConfigNames();

// Returns the built-in config `name`, or InvalidArgument listing the known
// names.
absl::StatusOr<SampleConfig> NamedSampleConfig(absl::string_view name);

// Parses a time-aware scalar (`20`, `(20,(0.2,0))`, `[20,[0.2,0]]`) for field
// `field` (named in errors).
absl::StatusOr<TimeAware<double>> ParseTimeAwareNumber(absl::string_view text,
                                                       absl::string_view field);

// Parses a time-aware patch combination (`"1x2"`, `1x2`,
// `("2x4",(0.03,"2x2"),(0.125,"1x2"))`).
absl::StatusOr<TimeAware<PatchComb>> ParseTimeAwarePatch(
    absl::string_view text, absl::string_view field = "P");

// Replaces field `field` of `config` by the value parsed from `text`. Fields:
// "P" (alias "patch_comb"), "cfg", "motion", "negMotion" (alias
// "neg_motion"), "step" (alias "steps"), "ts" (alias "time_shift"),
// "renorm". The result is validated with ValidateSampleConfig.
absl::Status OverrideSampleConfigField(SampleConfig& config,
                                       absl::string_view field,
                                       absl::string_view text);

// Checks ranges: step >= 2, ts > 0 and finite, finite thresholds and values,
// positive patch sizes. Errors name the field.
absl::Status ValidateSampleConfig(const SampleConfig& config);

// Builds a config from the JSON form the reference's dicts serialise to
// (`{"P": ["2x4", [0.03, "2x2"]], "step": 70, "ts": 24.0, "renorm": 2,
// "cfg": [20, [0.2, 0]], "motion": 6.0, "negMotion": [2.0, [0.05, 6.0]]}`).
absl::StatusOr<SampleConfig> SampleConfigFromJson(const nlohmann::json& json,
                                                  absl::string_view name);

// Returns a time-aware value in the config syntax, e.g. `(20,(0.2,0))`.
std::string FormatTimeAware(const TimeAware<double>& value);
std::string FormatTimeAware(const TimeAware<PatchComb>& value);

}  // namespace lvs::sampler

#endif  // LVS_MODEL_SAMPLER_SAMPLE_CONFIG_H_
