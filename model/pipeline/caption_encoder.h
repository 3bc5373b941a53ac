// Caption features for training (lvs-extract caches them, the trainer
// encodes uncached ones), computed exactly as the generation pipeline
// conditions the DiT (pipeline.cc, EncodeText): the system
// prompt is prepended to the caption, the Gemma tokenizer adds BOS and cuts
// the row at `max_tokens` ids, and the Gemma-2 encoder's hidden_states[-2]
// is taken. Only the rows of the real tokens are kept ([L, Dc], no padding),
// which is what the trainer pads and masks per batch.
//
// Features are returned on the CPU in bfloat16 whatever the encoder's
// precision (the dtype lvs-extract stores them in, like the latents), so
// features computed on the fly and cached ones are the same values.
//
// Thread-safety: a CaptionEncoder is immutable after Create(); Encode may
// be called concurrently.
#ifndef LVS_MODEL_PIPELINE_CAPTION_ENCODER_H_
#define LVS_MODEL_PIPELINE_CAPTION_ENCODER_H_

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/text_encoder/gemma2_encoder.h"
#include "model/text_encoder/tokenizer.h"

namespace lvs::pipeline {

// The system prompt the pipeline prepends to every prompt (the reference's
// SYSTEM_PROMPT, trailing space included).
const char* DefaultSystemPrompt();

// How captions are encoded.
struct CaptionEncoderOptions {
  // Prepended to every caption; the caption-dropout features are those of
  // this text alone (the pipeline's empty negative prompt).
  std::string system_prompt = DefaultSystemPrompt();
  // Longest token row kept, BOS and system prompt included (the
  // reference's max_length=256).
  int64_t max_tokens = 256;
  // Where and in which precision (float32 or bfloat16) the encoder runs.
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat;
};

// A Gemma tokenizer plus encoder producing per-caption features.
class CaptionEncoder {
 public:
  // Checks, without loading weights, that `dir` looks like a Gemma-2 text
  // encoder folder: config.json (model_type gemma2), tokenizer.model and a
  // safetensors checkpoint. Errors name the missing or bad file.
  static absl::Status CheckDir(const std::string& dir);

  // Loads the tokenizer (`dir`/tokenizer.model) and the encoder from `dir`.
  static absl::StatusOr<std::unique_ptr<CaptionEncoder>> Create(
      const std::string& dir, const CaptionEncoderOptions& options = {});

  // Returns the features [L, hidden] (bfloat16, CPU) of the real tokens of
  // system_prompt + `caption`. `truncated`, when not null, is set to whether
  // the row was cut at max_tokens.
  absl::StatusOr<torch::Tensor> Encode(const std::string& caption,
                                       bool* truncated = nullptr) const;

  // Returns the features of the system prompt alone (caption dropout).
  absl::StatusOr<torch::Tensor> EncodeSystemPrompt() const {
    return Encode("");
  }

  // Width of the features (the encoder's hidden size).
  int64_t hidden_size() const { return encoder_->config().hidden_size; }
  const CaptionEncoderOptions& options() const { return options_; }

 private:
  CaptionEncoder(std::unique_ptr<text_encoder::Tokenizer> tokenizer,
                 std::unique_ptr<text_encoder::Gemma2Encoder> encoder,
                 CaptionEncoderOptions options)
      : tokenizer_(std::move(tokenizer)),
        encoder_(std::move(encoder)),
        options_(std::move(options)) {}

  std::unique_ptr<text_encoder::Tokenizer> tokenizer_;
  std::unique_ptr<text_encoder::Gemma2Encoder> encoder_;
  CaptionEncoderOptions options_;
};

}  // namespace lvs::pipeline

#endif  // LVS_MODEL_PIPELINE_CAPTION_ENCODER_H_
