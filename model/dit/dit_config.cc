#include "model/dit/dit_config.h"

#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace lvs::dit {
namespace {

// Architecture fields of the real Lumina-Video model names.
struct Architecture {
  int64_t dim, n_layers, n_heads, n_kv_heads, multiple_of;
  double norm_eps;
  int64_t in_channels, cap_feat_dim;
};

const std::map<std::string, Architecture>& ArchitectureTable() {
  static const auto* table = new std::map<std::string, Architecture>{
      // Gemma-2-2B captions (hidden size 2304).
      {"MultiScaleNextDiT_2B_GQA", {2304, 24, 16, 8, 256, 1e-5, 16, 2304}},
  };
  return *table;
}

absl::Status FieldError(const std::string& source, const std::string& field,
                        absl::string_view rule) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": model_args field \"", field, "\" ", rule));
}

// Reads integer field `name` into `out` when present (non-null).
absl::Status ReadInt(const nlohmann::json& args, const std::string& name,
                     const std::string& source, int64_t* out) {
  if (!args.contains(name) || args[name].is_null()) return absl::OkStatus();
  const nlohmann::json& v = args[name];
  if (!v.is_number_integer())
    return FieldError(source, name, "must be an integer");
  *out = v.get<int64_t>();
  return absl::OkStatus();
}

absl::Status ReadDouble(const nlohmann::json& args, const std::string& name,
                        const std::string& source, double* out) {
  if (!args.contains(name) || args[name].is_null()) return absl::OkStatus();
  const nlohmann::json& v = args[name];
  if (!v.is_number()) return FieldError(source, name, "must be a number");
  *out = v.get<double>();
  return absl::OkStatus();
}

// Reads a list of positive integers (a Python tuple or list, or one int).
absl::StatusOr<std::vector<int64_t>> ReadIntList(
    const nlohmann::json& args, const std::string& name,
    const std::string& source, std::vector<int64_t> fallback) {
  if (!args.contains(name) || args[name].is_null()) return fallback;
  const nlohmann::json& v = args[name];
  std::vector<int64_t> out;
  if (v.is_number_integer()) {
    out.push_back(v.get<int64_t>());
  } else if (v.is_array()) {
    for (const nlohmann::json& e : v) {
      if (!e.is_number_integer()) {
        return FieldError(source, name, "must be a list of integers");
      }
      out.push_back(e.get<int64_t>());
    }
  } else {
    return FieldError(source, name, "must be a list of integers");
  }
  for (int64_t x : out) {
    if (x <= 0) return FieldError(source, name, "must hold positive integers");
  }
  return out;
}

absl::Status ValidateArchitecture(const DiTConfig& c,
                                  const std::string& source) {
  auto positive = [&](int64_t v, const char* name) -> absl::Status {
    if (v <= 0) return FieldError(source, name, "must be positive");
    return absl::OkStatus();
  };
  LVS_RETURN_IF_ERROR(positive(c.dim, "dim"));
  LVS_RETURN_IF_ERROR(positive(c.n_layers, "n_layers"));
  LVS_RETURN_IF_ERROR(positive(c.n_heads, "n_heads"));
  LVS_RETURN_IF_ERROR(positive(c.n_kv_heads, "n_kv_heads"));
  LVS_RETURN_IF_ERROR(positive(c.multiple_of, "multiple_of"));
  LVS_RETURN_IF_ERROR(positive(c.in_channels, "in_channels"));
  LVS_RETURN_IF_ERROR(positive(c.cap_feat_dim, "cap_feat_dim"));
  if (c.dim % c.n_heads != 0)
    return FieldError(source, "dim", "must be a multiple of n_heads");
  if (c.n_heads % c.n_kv_heads != 0) {
    return FieldError(source, "n_heads", "must be a multiple of n_kv_heads");
  }
  if (c.head_dim() % 16 != 0) {
    return FieldError(source, "dim",
                      "gives a head_dim that is not a multiple of 16 (3D RoPE "
                      "splits head_dim/8 into 2+3+3 even parts)");
  }
  if (c.norm_eps <= 0)
    return FieldError(source, "norm_eps", "must be positive");
  return absl::OkStatus();
}

}  // namespace

int64_t DiTConfig::ffn_hidden_dim() const {
  int64_t hidden = static_cast<int64_t>(2 * 4 * dim / 3);
  double scaled = static_cast<double>(hidden);
  if (ffn_dim_multiplier)
    scaled =
        static_cast<double>(static_cast<int64_t>(*ffn_dim_multiplier * hidden));
  return multiple_of * static_cast<int64_t>(std::ceil(scaled / multiple_of));
}

std::array<int64_t, 3> DiTConfig::rope_axes_dims() const {
  const int64_t unit = head_dim() / 8;
  return {unit * 2, unit * 3, unit * 3};
}

bool DiTConfig::HasPatch(int64_t patch_size, int64_t f_patch_size) const {
  for (const PatchComb& p : patches) {
    if (p.patch == patch_size && p.f_patch == f_patch_size) return true;
  }
  return false;
}

std::vector<std::string> DiTConfig::patch_keys() const {
  std::vector<std::string> keys;
  for (const PatchComb& p : patches) keys.push_back(p.DiTKey());
  return keys;
}

absl::StatusOr<DiTConfig> DiTConfigFromArgs(const nlohmann::json& args,
                                            const std::string& source) {
  if (!args.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": model_args is not a namespace/object"));
  }
  DiTConfig c;
  if (!args.contains("model") || !args["model"].is_string()) {
    return FieldError(source, "model", "is missing or not a string");
  }
  c.model = args["model"].get<std::string>();
  auto arch = ArchitectureTable().find(c.model);
  if (arch != ArchitectureTable().end()) {
    const Architecture& a = arch->second;
    c.dim = a.dim, c.n_layers = a.n_layers, c.n_heads = a.n_heads;
    c.n_kv_heads = a.n_kv_heads, c.multiple_of = a.multiple_of;
    c.norm_eps = a.norm_eps, c.in_channels = a.in_channels;
    c.cap_feat_dim = a.cap_feat_dim;
  } else if (!args.contains("dim")) {
    std::vector<std::string> known;
    for (const auto& [name, unused] : ArchitectureTable())
      known.push_back(name);
    return FieldError(
        source, "model",
        absl::StrCat(
            "names an unknown architecture \"", c.model,
            "\" and the args carry no \"dim\"/\"n_layers\"/... fields; known: ",
            absl::StrJoin(known, ", ")));
  }
  LVS_RETURN_IF_ERROR(ReadInt(args, "dim", source, &c.dim));
  LVS_RETURN_IF_ERROR(ReadInt(args, "n_layers", source, &c.n_layers));
  LVS_RETURN_IF_ERROR(ReadInt(args, "n_heads", source, &c.n_heads));
  c.n_kv_heads = c.n_kv_heads > 0 ? c.n_kv_heads : c.n_heads;
  LVS_RETURN_IF_ERROR(ReadInt(args, "n_kv_heads", source, &c.n_kv_heads));
  LVS_RETURN_IF_ERROR(ReadInt(args, "multiple_of", source, &c.multiple_of));
  if (args.contains("ffn_dim_multiplier") &&
      !args["ffn_dim_multiplier"].is_null()) {
    double m = 0;
    LVS_RETURN_IF_ERROR(ReadDouble(args, "ffn_dim_multiplier", source, &m));
    c.ffn_dim_multiplier = m;
  }
  LVS_RETURN_IF_ERROR(ReadDouble(args, "norm_eps", source, &c.norm_eps));
  LVS_RETURN_IF_ERROR(ReadInt(args, "in_channels", source, &c.in_channels));
  LVS_RETURN_IF_ERROR(ReadInt(args, "cap_feat_dim", source, &c.cap_feat_dim));
  if (args.contains("qk_norm") && !args["qk_norm"].is_null()) {
    if (!args["qk_norm"].is_boolean())
      return FieldError(source, "qk_norm", "must be a bool");
    c.qk_norm = args["qk_norm"].get<bool>();
  }
  LVS_ASSIGN_OR_RETURN(std::vector<int64_t> ps,
                       ReadIntList(args, "patch_sizes", source, {2}));
  LVS_ASSIGN_OR_RETURN(std::vector<int64_t> fps,
                       ReadIntList(args, "f_patch_sizes", source, {2}));
  if (ps.size() != fps.size()) {
    return FieldError(source, "f_patch_sizes",
                      absl::StrCat("has ", fps.size(),
                                   " entries but patch_sizes has ", ps.size()));
  }
  for (size_t i = 0; i < ps.size(); ++i) {
    if (c.HasPatch(ps[i], fps[i])) {
      return FieldError(source, "patch_sizes",
                        absl::StrCat("repeats the combination ",
                                     PatchComb{fps[i], ps[i]}.DiTKey()));
    }
    c.patches.push_back(PatchComb{fps[i], ps[i]});
  }
  LVS_RETURN_IF_ERROR(ReadDouble(args, "rope_theta", source, &c.rope_theta));
  LVS_RETURN_IF_ERROR(ReadDouble(args, "t_scale", source, &c.t_scale));
  LVS_RETURN_IF_ERROR(
      ReadDouble(args, "motion_scale", source, &c.motion_scale));
  LVS_RETURN_IF_ERROR(ValidateArchitecture(c, source));
  return c;
}

}  // namespace lvs::dit
