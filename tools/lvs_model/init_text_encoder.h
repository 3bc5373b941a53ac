// `lvs-model init-text-encoder`: writes a Gemma-2 text encoder with
// fixed-seed random weights in the Hugging Face layout (config.json,
// model.safetensors, tokenizer.model, tokenizer_config.json,
// special_tokens_map.json) for models trained from scratch with a frozen
// encoder (the demo model). Weights: linear and embedding weights from
// N(0, initializer_range) drawn in checkpoint-key order from one generator
// seeded by --seed (token embeddings from N(0, --embedding-std) when set),
// RMSNorm weights 0 (Gemma's norm scales by 1 + weight).
//
// Thread-safety: a single-threaded command.
#ifndef LVS_TOOLS_LVS_MODEL_INIT_TEXT_ENCODER_H_
#define LVS_TOOLS_LVS_MODEL_INIT_TEXT_ENCODER_H_

#include <cstdint>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace lvs::init_text_encoder {

struct InitTextEncoderOptions {
  std::string config;     // Gemma-2 config.json to use.
  std::string tokenizer;  // sentencepiece model (e.g. from spm_train).
  std::string out_dir;
  uint64_t seed = 0;
  double embedding_std = 0;  // > 0: std of embed_tokens (else the config's).
};

// Writes the encoder directory.
absl::Status InitTextEncoder(const InitTextEncoderOptions& options);

// Adds the `init-text-encoder` subcommand to `app`.
void AddInitTextEncoderCommand(CLI::App& app);

}  // namespace lvs::init_text_encoder

#endif  // LVS_TOOLS_LVS_MODEL_INIT_TEXT_ENCODER_H_
