// Gemma-2 hyper-parameters read from a Hugging Face `config.json`
// (Gemma2Config field names, `model_type: gemma2`). Torch-free.
//
// Thread-safety: a plain value type.
#ifndef LVS_MODEL_TEXT_ENCODER_GEMMA2_CONFIG_H_
#define LVS_MODEL_TEXT_ENCODER_GEMMA2_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace lvs::text_encoder {

// The fields of Gemma2Config the encoder uses. Defaults are Gemma2Config's
// (transformers 4.43) for the optional fields; the architecture fields are
// required.
struct Gemma2Config {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 256;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  // Attention scores are scaled by query_pre_attn_scalar^-0.5.
  double query_pre_attn_scalar = 224.0;
  // `cap * tanh(scores / cap)`; nullopt when the config has null.
  std::optional<double> attn_logit_softcapping = 50.0;
  // Even layers see only keys with i - j < sliding_window.
  int64_t sliding_window = 4096;

  // Parses the JSON object `j` read from `source` (named in errors) and
  // validates it: `model_type` must be "gemma2", the activation
  // gelu_pytorch_tanh, every size positive, heads divisible by kv heads.
  static absl::StatusOr<Gemma2Config> FromJson(const nlohmann::json& j,
                                               const std::string& source);

  // Reads and parses `path` (a config.json).
  static absl::StatusOr<Gemma2Config> FromFile(const std::string& path);

  // True for the layers that use sliding-window attention (even indices).
  static bool IsSlidingLayer(int64_t layer_index) {
    return layer_index % 2 == 0;
  }
};

}  // namespace lvs::text_encoder

#endif  // LVS_MODEL_TEXT_ENCODER_GEMMA2_CONFIG_H_
