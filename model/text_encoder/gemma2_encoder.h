// The Gemma-2 text encoder of Lumina-Video: `Gemma2Model` from a Hugging
// Face checkpoint directory (config.json + sharded safetensors) producing
// `hidden_states[-2]`, the raw output of the second-to-last decoder layer,
// as the DiT's caption features.
//
// Production encoders build and load only the embedding and the first
// num_hidden_layers - 1 layers (the last layer and the final norm are
// skipped, their checkpoint tensors ignored); `all_layers` builds the whole
// model so that every hidden state can be produced (conformance).
//
// Thread-safety: an encoder is immutable after Create(); the Encode methods
// may be called concurrently.
#ifndef LVS_MODEL_TEXT_ENCODER_GEMMA2_ENCODER_H_
#define LVS_MODEL_TEXT_ENCODER_GEMMA2_ENCODER_H_

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/text_encoder/gemma2_config.h"
#include "model/text_encoder/gemma2_layers.h"

namespace lvs::text_encoder {

// Gemma2Model: `embed_tokens`, `layers.N`, `norm` (checkpoint keys without
// the `model.` prefix). Holds the first `num_layers` decoder layers, and the
// final norm only when `final_norm`.
class Gemma2ModelImpl : public torch::nn::Module {
 public:
  Gemma2ModelImpl(const Gemma2Config& config, int64_t num_layers,
                  bool final_norm);

  // ids, mask [B, L] int64 -> the output of the last built layer (then the
  // final norm when built) [B, L, hidden].
  torch::Tensor forward(const torch::Tensor& input_ids,
                        const torch::Tensor& attention_mask);

  // As forward() but returns Hugging Face's `hidden_states` tuple: the
  // scaled embedding, the output of every built layer, and (when built) the
  // final norm of the last one instead of its raw output.
  std::vector<torch::Tensor> HiddenStates(const torch::Tensor& input_ids,
                                          const torch::Tensor& attention_mask);

  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  Gemma2RMSNorm norm{nullptr};

 private:
  // Runs the layers; calls `visit` with each hidden state in tuple order.
  torch::Tensor Run(const torch::Tensor& input_ids,
                    const torch::Tensor& attention_mask,
                    const std::function<void(const torch::Tensor&)>& visit);

  Gemma2Config config_;
};
TORCH_MODULE(Gemma2Model);

// How an encoder is built.
struct TextEncoderOptions {
  // Weights and activations (float32 or bfloat16).
  torch::ScalarType dtype = torch::kFloat;
  torch::Device device = torch::kCPU;
  // Build every layer and the final norm (EncodeHiddenStates).
  bool all_layers = false;
};

// A loaded encoder.
class Gemma2Encoder {
 public:
  // Loads `dir`: config.json (model_type gemma2) and the checkpoint
  // (model.safetensors.index.json with its shards, or one .safetensors),
  // strictly. Errors name the file and the rule broken.
  static absl::StatusOr<std::unique_ptr<Gemma2Encoder>> Create(
      const std::string& dir, const TextEncoderOptions& options = {});

  // Wraps a built model (for example with random weights). REQUIRES: `model`
  // was built from `config` with the layers `options.all_layers` implies,
  // and lives on options.device in options.dtype.
  Gemma2Encoder(const Gemma2Config& config, Gemma2Model model,
                const TextEncoderOptions& options);

  // Returns hidden_states[-2] [B, L, hidden] (options.dtype, on
  // options.device) for input_ids and attention_mask [B, L] int64.
  absl::StatusOr<torch::Tensor> EncodePromptEmbeds(
      const torch::Tensor& input_ids,
      const torch::Tensor& attention_mask) const;

  // Returns every hidden state (num_hidden_layers + 1 entries, the last one
  // normed). FailedPrecondition unless built with all_layers.
  absl::StatusOr<std::vector<torch::Tensor>> EncodeHiddenStates(
      const torch::Tensor& input_ids,
      const torch::Tensor& attention_mask) const;

  const Gemma2Config& config() const { return config_; }
  const TextEncoderOptions& options() const { return options_; }

 private:
  // Checks shapes, dtypes and id ranges; returns the inputs on the device.
  absl::StatusOr<std::pair<torch::Tensor, torch::Tensor>> PrepareInputs(
      const torch::Tensor& input_ids,
      const torch::Tensor& attention_mask) const;

  Gemma2Config config_;
  Gemma2Model model_;
  TextEncoderOptions options_;
};

}  // namespace lvs::text_encoder

#endif  // LVS_MODEL_TEXT_ENCODER_GEMMA2_ENCODER_H_
