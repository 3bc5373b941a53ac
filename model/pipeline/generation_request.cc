#include "model/pipeline/generation_request.h"

#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace lvs::pipeline {
namespace {

using sampler::PatchComb;

absl::Status FieldError(absl::string_view field, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", rule));
}

// Every patch combination a config can resolve to, in first-use order.
std::vector<PatchComb> ConfigPatches(const sampler::SampleConfig& config) {
  std::vector<PatchComb> out = {config.patch.default_value};
  for (const auto& [threshold, patch] : config.patch.steps) {
    bool seen = false;
    for (const PatchComb& p : out) seen = seen || p == patch;
    if (!seen) out.push_back(patch);
  }
  return out;
}

absl::Status CheckPrompts(const GenerationRequest& r, const ModelLimits& l) {
  if (absl::StripAsciiWhitespace(r.prompt).empty()) {
    return FieldError("prompt", "must not be empty");
  }
  if (static_cast<int64_t>(r.prompt.size()) > l.max_prompt_bytes) {
    return FieldError("prompt",
                      absl::StrCat("is ", r.prompt.size(), " bytes; at most ",
                                   l.max_prompt_bytes, " allowed"));
  }
  if (static_cast<int64_t>(r.negative_prompt.size()) > l.max_prompt_bytes) {
    return FieldError(
        "negative_prompt",
        absl::StrCat("is ", r.negative_prompt.size(), " bytes; at most ",
                     l.max_prompt_bytes, " allowed"));
  }
  return absl::OkStatus();
}

absl::Status CheckSize(const GenerationRequest& r,
                       const sampler::SampleConfig& config,
                       const ModelLimits& l) {
  for (const auto& [field, v] :
       {std::pair<const char*, int>{"width", r.width}, {"height", r.height}}) {
    if (v <= 0 || v % 32 != 0) {
      return FieldError(absl::StrCat("resolution (", field, ")"),
                        absl::StrCat(v, " is not a positive multiple of 32"));
    }
  }
  const int64_t budget = ResolutionBudget(config, l);
  const int64_t cells = int64_t{r.width / 32} * (r.height / 32);
  if (cells > (budget / 32) * (budget / 32)) {
    return FieldError(
        "resolution",
        absl::StrCat(r.width, "x", r.height, " has ", cells,
                     " cells of 32x32 pixels; the budget of R", budget, " is ",
                     (budget / 32) * (budget / 32)));
  }
  return absl::OkStatus();
}

// Checks that every patch combination of the config exists and that the
// latent fits its RoPE limits and temporal patch.
absl::Status CheckPatches(const GenerationPlan& plan, const ModelLimits& l) {
  const int64_t n = plan.latent_frames;
  const int64_t lh = plan.latent_shape[3], lw = plan.latent_shape[4];
  for (const PatchComb& p : ConfigPatches(plan.config)) {
    if (!l.patches.empty()) {
      bool found = false;
      for (const PatchComb& q : l.patches) found = found || p == q;
      if (!found) {
        return FieldError("sample_config",
                          absl::StrCat("patch combination ", p.ToString(),
                                       " is not in the DiT checkpoint"));
      }
    }
    if (lh % p.patch != 0 || lw % p.patch != 0) {
      return FieldError(
          "resolution",
          absl::StrCat("latent ", lh, "x", lw, " is not divisible by patch ",
                       p.patch, " of ", p.ToString()));
    }
    if (n % p.f_patch != 0) {
      return FieldError("frames",
                        absl::StrCat(plan.request.frames, " frames give ", n,
                                     " latent frames, not a multiple of the "
                                     "temporal patch of ",
                                     p.ToString()));
    }
    const std::array<int64_t, 3> positions = {n / p.f_patch, lh / p.patch,
                                              lw / p.patch};
    const char* names[3] = {"frames", "resolution (height)",
                            "resolution (width)"};
    for (int a = 0; a < 3; ++a) {
      if (positions[a] > l.rope_max_positions[a]) {
        return FieldError(
            names[a], absl::StrCat(positions[a], " patch positions with ",
                                   p.ToString(), " exceed the RoPE limit of ",
                                   l.rope_max_positions[a]));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Precision> ParsePrecision(absl::string_view text) {
  const std::string t = absl::AsciiStrToLower(text);
  if (t.empty() || t == "default") return Precision::kDefault;
  if (t == "bf16" || t == "bfloat16") return Precision::kBFloat16;
  if (t == "fp32" || t == "float32") return Precision::kFloat32;
  return FieldError("precision",
                    absl::StrCat("'", text, "' is not bf16 or fp32"));
}

bool DefaultsToBf16(bool cuda, bool cpu_amx_bf16) {
  return cuda || cpu_amx_bf16;
}

std::string PrecisionName(Precision precision) {
  switch (precision) {
    case Precision::kFloat32:
      return "fp32";
    case Precision::kBFloat16:
      return "bf16";
    default:
      return "default";
  }
}

absl::StatusOr<std::array<int, 2>> ParseResolution(absl::string_view text) {
  std::vector<std::string> parts =
      absl::StrSplit(absl::AsciiStrToLower(text), 'x');
  std::array<int, 2> wh = {0, 0};
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &wh[0]) ||
      !absl::SimpleAtoi(parts[1], &wh[1])) {
    return FieldError("resolution",
                      absl::StrCat("'", text, "' is not WxH, e.g. 1248x704"));
  }
  return wh;
}

int64_t ResolutionBudget(const sampler::SampleConfig& config,
                         const ModelLimits& limits) {
  static const std::regex kR(R"(R(\d+))");
  std::smatch m;
  if (std::regex_search(config.name, m, kR)) {
    int64_t r = 0;
    if (absl::SimpleAtoi(m[1].str(), &r) && r >= 32) return r;
  }
  return limits.max_resolution;
}

absl::StatusOr<GenerationPlan> PlanGeneration(const GenerationRequest& request,
                                              const ModelLimits& limits,
                                              bool bf16_default) {
  GenerationPlan plan;
  plan.request = request;
  LVS_RETURN_IF_ERROR(CheckPrompts(request, limits));
  if (request.config.has_value()) {
    plan.config = *request.config;
    absl::Status s = sampler::ValidateSampleConfig(plan.config);
    if (!s.ok()) return FieldError("sample_config", s.message());
  } else {
    auto named = sampler::NamedSampleConfig(request.sample_config);
    if (!named.ok())
      return FieldError("sample_config", named.status().message());
    plan.config = *named;
  }
  LVS_RETURN_IF_ERROR(CheckSize(request, plan.config, limits));
  if (request.grid_points != 0 &&
      (request.grid_points < 2 ||
       request.grid_points > limits.max_grid_points)) {
    return FieldError("steps",
                      absl::StrCat(request.grid_points, " is outside [2, ",
                                   limits.max_grid_points,
                                   "] (0: the "
                                   "config's count)"));
  }
  if (!(request.cache_threshold >= 0 && request.cache_threshold <= 1)) {
    return FieldError("cache_threshold",
                      absl::StrCat(request.cache_threshold,
                                   " is outside [0, 1] (0: no step caching)"));
  }
  plan.grid_points =
      request.grid_points != 0 ? request.grid_points : plan.config.grid_points;
  plan.config.grid_points = plan.grid_points;
  if (request.fps < 1 || request.fps > limits.max_fps) {
    return FieldError("fps", absl::StrCat(request.fps, " is outside [1, ",
                                          limits.max_fps, "]"));
  }
  plan.latent_frames = request.frames / limits.temporal_factor;
  if (request.frames < 0 || plan.latent_frames < 2) {
    return FieldError(
        "frames",
        absl::StrCat(request.frames, " gives ", plan.latent_frames,
                     " latent frames (frames / ", limits.temporal_factor,
                     "); at least 2 needed, "
                     "so at least ",
                     2 * limits.temporal_factor, " frames"));
  }
  const int64_t n = plan.latent_frames;
  plan.output_frames = n % 2 == 0 ? 4 * n : 4 * n - 3;
  plan.latent_shape = {1, limits.latent_channels, n,
                       request.height / limits.spatial_factor,
                       request.width / limits.spatial_factor};
  LVS_RETURN_IF_ERROR(CheckPatches(plan, limits));
  plan.precision = request.precision;
  if (plan.precision == Precision::kDefault) {
    plan.precision = bf16_default ? Precision::kBFloat16 : Precision::kFloat32;
  }
  return plan;
}

}  // namespace lvs::pipeline
