#include "model/vae/vae_config.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace lvs::vae {
namespace {

using json = nlohmann::json;

absl::Status FieldError(const std::string& source, const std::string& field,
                        const std::string& rule) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": field \"", field, "\" ", rule));
}

absl::StatusOr<int64_t> PositiveInt(const json& j, const std::string& field,
                                    const std::string& source) {
  if (!j.contains(field)) return FieldError(source, field, "is missing");
  const json& v = j.at(field);
  if (!v.is_number_integer() || v.get<int64_t>() <= 0) {
    return FieldError(source, field, "must be a positive integer");
  }
  return v.get<int64_t>();
}

// Optional integer with a default.
absl::StatusOr<int64_t> OptionalPositiveInt(const json& j,
                                            const std::string& field,
                                            int64_t fallback,
                                            const std::string& source) {
  if (!j.contains(field) || j.at(field).is_null()) return fallback;
  return PositiveInt(j, field, source);
}

absl::Status CheckBlockTypes(const json& j, const std::string& field,
                             const std::string& expected, size_t count,
                             const std::string& source) {
  if (!j.contains(field)) return absl::OkStatus();
  const json& v = j.at(field);
  if (!v.is_array() || v.size() != count) {
    return FieldError(
        source, field,
        absl::StrCat("must list ", count,
                     " block types (one per block_out_channels)"));
  }
  for (const json& t : v) {
    if (!t.is_string() || t.get<std::string>() != expected) {
      return FieldError(source, field,
                        absl::StrCat("may only contain \"", expected, "\""));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckHeader(const json& j, const std::string& source) {
  if (!j.contains("_class_name")) {
    return FieldError(source, "_class_name", "is missing");
  }
  if (j.at("_class_name") != "AutoencoderKLCogVideoX") {
    return FieldError(source, "_class_name",
                      absl::StrCat("is ", j.at("_class_name").dump(),
                                   ", expected \"AutoencoderKLCogVideoX\""));
  }
  if (j.contains("act_fn") && j.at("act_fn") != "silu" &&
      j.at("act_fn") != "swish") {
    return FieldError(source, "act_fn", "must be \"silu\"");
  }
  for (const char* field : {"use_quant_conv", "use_post_quant_conv"}) {
    if (j.contains(field) && j.at(field).is_boolean() &&
        j.at(field).get<bool>()) {
      return FieldError(source, field,
                        "must be false (quant convs are not supported)");
    }
  }
  return absl::OkStatus();
}

absl::Status ReadBlocks(const json& j, const std::string& source,
                        VaeConfig& c) {
  if (!j.contains("block_out_channels")) {
    return FieldError(source, "block_out_channels", "is missing");
  }
  const json& blocks = j.at("block_out_channels");
  if (!blocks.is_array() || blocks.empty()) {
    return FieldError(source, "block_out_channels", "must be a non-empty list");
  }
  for (const json& b : blocks) {
    if (!b.is_number_integer() || b.get<int64_t>() <= 0 ||
        b.get<int64_t>() % c.norm_num_groups != 0) {
      return FieldError(
          source, "block_out_channels",
          absl::StrCat("must hold positive multiples of norm_num_groups (",
                       c.norm_num_groups, ")"));
    }
    c.block_out_channels.push_back(b.get<int64_t>());
  }
  LVS_RETURN_IF_ERROR(CheckBlockTypes(
      j, "down_block_types", "CogVideoXDownBlock3D", blocks.size(), source));
  return CheckBlockTypes(j, "up_block_types", "CogVideoXUpBlock3D",
                         blocks.size(), source);
}

absl::Status ReadTemporalRatio(const json& j, const std::string& source,
                               VaeConfig& c) {
  const std::string field = "temporal_compression_ratio";
  if (!j.contains(field)) return FieldError(source, field, "is missing");
  const json& v = j.at(field);
  double ratio = v.is_number() ? v.get<double>() : -1;
  int64_t level = ratio >= 1 ? std::llround(std::log2(ratio)) : -1;
  if (level < 0 || std::ldexp(1.0, level) != ratio ||
      level > static_cast<int64_t>(c.block_out_channels.size()) - 1) {
    return FieldError(
        source, field,
        absl::StrCat("must be a power of two of at most 2^(blocks - 1) = ",
                     int64_t{1} << (c.block_out_channels.size() - 1)));
  }
  c.temporal_compression_ratio = int64_t{1} << level;
  return absl::OkStatus();
}

}  // namespace

int64_t VaeConfig::TemporalCompressLevel() const {
  int64_t level = 0;
  while ((int64_t{1} << level) < temporal_compression_ratio) ++level;
  return level;
}

int64_t VaeConfig::SpatialCompressionRatio() const {
  return int64_t{1} << (block_out_channels.size() - 1);
}

absl::StatusOr<VaeConfig> ParseVaeConfig(const std::string& text,
                                         const std::string& source) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not a JSON object"));
  }
  LVS_RETURN_IF_ERROR(CheckHeader(j, source));
  VaeConfig c;
  LVS_ASSIGN_OR_RETURN(c.in_channels, PositiveInt(j, "in_channels", source));
  LVS_ASSIGN_OR_RETURN(c.out_channels, PositiveInt(j, "out_channels", source));
  LVS_ASSIGN_OR_RETURN(c.latent_channels,
                       PositiveInt(j, "latent_channels", source));
  LVS_ASSIGN_OR_RETURN(c.layers_per_block,
                       PositiveInt(j, "layers_per_block", source));
  LVS_ASSIGN_OR_RETURN(c.norm_num_groups,
                       PositiveInt(j, "norm_num_groups", source));
  if (!j.contains("norm_eps"))
    return FieldError(source, "norm_eps", "is missing");
  if (!j.at("norm_eps").is_number() || j.at("norm_eps").get<double>() <= 0) {
    return FieldError(source, "norm_eps", "must be a positive number");
  }
  c.norm_eps = j.at("norm_eps").get<double>();
  LVS_RETURN_IF_ERROR(ReadBlocks(j, source, c));
  LVS_RETURN_IF_ERROR(ReadTemporalRatio(j, source, c));
  LVS_ASSIGN_OR_RETURN(c.sample_height,
                       OptionalPositiveInt(j, "sample_height", 480, source));
  LVS_ASSIGN_OR_RETURN(c.sample_width,
                       OptionalPositiveInt(j, "sample_width", 720, source));
  if (j.contains("scaling_factor") && j.at("scaling_factor").is_number()) {
    c.scaling_factor = j.at("scaling_factor").get<double>();
  }
  return c;
}

absl::StatusOr<VaeConfig> ReadVaeConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  return ParseVaeConfig(text.str(), path);
}

}  // namespace lvs::vae
