#include "model/text_encoder/gemma2_config.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace lvs::text_encoder {
namespace {

absl::Status FieldError(const std::string& source, const std::string& field,
                        const std::string& rule) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": field \"", field, "\" ", rule));
}

// Reads a required positive integer field.
absl::Status ReadSize(const nlohmann::json& j, const std::string& source,
                      const std::string& field, int64_t* out) {
  auto it = j.find(field);
  if (it == j.end()) return FieldError(source, field, "is missing");
  if (!it->is_number_integer() || it->get<int64_t>() <= 0) {
    return FieldError(source, field, "must be a positive integer");
  }
  *out = it->get<int64_t>();
  return absl::OkStatus();
}

// Reads an optional positive number field (keeps `*out` when absent).
absl::Status ReadPositive(const nlohmann::json& j, const std::string& source,
                          const std::string& field, double* out) {
  auto it = j.find(field);
  if (it == j.end()) return absl::OkStatus();
  if (!it->is_number() || it->get<double>() <= 0) {
    return FieldError(source, field, "must be a positive number");
  }
  *out = it->get<double>();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Gemma2Config> Gemma2Config::FromJson(const nlohmann::json& j,
                                                    const std::string& source) {
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not a JSON object"));
  }
  auto type = j.find("model_type");
  if (type == j.end() || !type->is_string() ||
      type->get<std::string>() != "gemma2") {
    return FieldError(source, "model_type",
                      absl::StrCat("must be \"gemma2\", got ",
                                   type == j.end() ? "nothing" : type->dump()));
  }
  for (const char* field : {"hidden_activation", "hidden_act"}) {
    auto act = j.find(field);
    if (act != j.end() && !act->is_null() &&
        *act != nlohmann::json("gelu_pytorch_tanh")) {
      return FieldError(
          source, field,
          absl::StrCat("must be \"gelu_pytorch_tanh\", got ", act->dump()));
    }
  }
  Gemma2Config c;
  LVS_RETURN_IF_ERROR(ReadSize(j, source, "vocab_size", &c.vocab_size));
  LVS_RETURN_IF_ERROR(ReadSize(j, source, "hidden_size", &c.hidden_size));
  LVS_RETURN_IF_ERROR(
      ReadSize(j, source, "intermediate_size", &c.intermediate_size));
  LVS_RETURN_IF_ERROR(
      ReadSize(j, source, "num_hidden_layers", &c.num_hidden_layers));
  LVS_RETURN_IF_ERROR(
      ReadSize(j, source, "num_attention_heads", &c.num_attention_heads));
  LVS_RETURN_IF_ERROR(
      ReadSize(j, source, "num_key_value_heads", &c.num_key_value_heads));
  if (j.contains("head_dim")) {
    LVS_RETURN_IF_ERROR(ReadSize(j, source, "head_dim", &c.head_dim));
  }
  if (j.contains("sliding_window") && !j["sliding_window"].is_null()) {
    LVS_RETURN_IF_ERROR(
        ReadSize(j, source, "sliding_window", &c.sliding_window));
  }
  LVS_RETURN_IF_ERROR(ReadPositive(j, source, "rms_norm_eps", &c.rms_norm_eps));
  LVS_RETURN_IF_ERROR(ReadPositive(j, source, "rope_theta", &c.rope_theta));
  LVS_RETURN_IF_ERROR(ReadPositive(j, source, "query_pre_attn_scalar",
                                   &c.query_pre_attn_scalar));
  if (auto cap = j.find("attn_logit_softcapping"); cap != j.end()) {
    if (cap->is_null()) {
      c.attn_logit_softcapping.reset();
    } else {
      double value = 0;
      LVS_RETURN_IF_ERROR(
          ReadPositive(j, source, "attn_logit_softcapping", &value));
      c.attn_logit_softcapping = value;
    }
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return FieldError(source, "num_attention_heads",
                      absl::StrCat("(", c.num_attention_heads,
                                   ") must be a multiple of "
                                   "num_key_value_heads (",
                                   c.num_key_value_heads, ")"));
  }
  if (c.head_dim % 2 != 0) {
    return FieldError(source, "head_dim", "must be even (rotary halves)");
  }
  return c;
}

absl::StatusOr<Gemma2Config> Gemma2Config::FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  }
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": invalid JSON"));
  }
  return FromJson(j, path);
}

}  // namespace lvs::text_encoder
