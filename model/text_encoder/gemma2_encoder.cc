#include "model/text_encoder/gemma2_encoder.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/common/torch_status.h"
#include "model/io/checkpoint.h"
#include "model/io/state_dict.h"

namespace lvs::text_encoder {
namespace {

bool IsIntegral(const torch::Tensor& t) {
  return !t.is_floating_point() && !t.is_complex();
}

}  // namespace

Gemma2ModelImpl::Gemma2ModelImpl(const Gemma2Config& config, int64_t num_layers,
                                 bool final_norm)
    : config_(config) {
  embed_tokens = register_module(
      "embed_tokens",
      torch::nn::Embedding(config.vocab_size, config.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i) {
    layers->push_back(Gemma2DecoderLayer(config));
  }
  if (final_norm) {
    norm = register_module(
        "norm", Gemma2RMSNorm(config.hidden_size, config.rms_norm_eps));
  }
}

torch::Tensor Gemma2ModelImpl::Run(
    const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
    const std::function<void(const torch::Tensor&)>& visit) {
  torch::Tensor h = embed_tokens(input_ids);  // [B, L] -> [B, L, hidden]
  // The scale is a tensor in the activation dtype (6.9375 in bf16 for 48).
  h = h * torch::scalar_tensor(
              std::sqrt(static_cast<double>(config_.hidden_size)), h.options());
  const torch::ScalarType dtype = h.scalar_type();
  const RotaryTables rope =
      ComputeRotaryTables(config_, input_ids.size(1), dtype, h.device());
  const AttentionMasks masks =
      BuildAttentionMasks(attention_mask, config_.sliding_window, dtype);
  for (size_t i = 0; i < layers->size(); ++i) {
    if (visit) visit(h);
    const torch::Tensor& mask =
        Gemma2Config::IsSlidingLayer(i) ? masks.sliding : masks.full;
    h = layers->at<Gemma2DecoderLayerImpl>(i).forward(h, rope, mask);
  }
  if (!norm.is_empty()) h = norm(h);
  if (visit) visit(h);
  return h;
}

torch::Tensor Gemma2ModelImpl::forward(const torch::Tensor& input_ids,
                                       const torch::Tensor& attention_mask) {
  return Run(input_ids, attention_mask, nullptr);
}

std::vector<torch::Tensor> Gemma2ModelImpl::HiddenStates(
    const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  std::vector<torch::Tensor> states;
  Run(input_ids, attention_mask,
      [&states](const torch::Tensor& h) { states.push_back(h); });
  return states;
}

absl::StatusOr<std::unique_ptr<Gemma2Encoder>> Gemma2Encoder::Create(
    const std::string& dir, const TextEncoderOptions& options) {
  if (options.dtype != torch::kFloat && options.dtype != torch::kBFloat16) {
    return absl::InvalidArgumentError(
        absl::StrCat("text encoder dtype must be float32 or bfloat16, got ",
                     c10::toString(options.dtype)));
  }
  LVS_ASSIGN_OR_RETURN(Gemma2Config config,
                       Gemma2Config::FromFile(dir + "/config.json"));
  LVS_ASSIGN_OR_RETURN(io::TensorMap tensors, io::LoadCheckpoint(dir));
  const int64_t n = config.num_hidden_layers;
  io::StateDictOptions load;
  load.strip_prefix = "model.";
  load.dtype = options.dtype;
  load.device = options.device;
  if (!options.all_layers) {
    // hidden_states[-2] never needs the last layer or the final norm.
    load.ignored_prefixes = {absl::StrCat("model.layers.", n - 1, "."),
                             "model.norm."};
  }
  try {
    Gemma2Model model(config, options.all_layers ? n : n - 1,
                      options.all_layers);
    LVS_RETURN_IF_ERROR(io::LoadStateDict(*model, tensors, load, dir));
    model->eval();
    return std::make_unique<Gemma2Encoder>(config, std::move(model), options);
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(
        e, absl::StrCat(dir, ": loading the text encoder"));
  }
}

Gemma2Encoder::Gemma2Encoder(const Gemma2Config& config, Gemma2Model model,
                             const TextEncoderOptions& options)
    : config_(config), model_(std::move(model)), options_(options) {}

absl::StatusOr<std::pair<torch::Tensor, torch::Tensor>>
Gemma2Encoder::PrepareInputs(const torch::Tensor& input_ids,
                             const torch::Tensor& attention_mask) const {
  if (!input_ids.defined() || !attention_mask.defined() ||
      input_ids.dim() != 2 || input_ids.sizes() != attention_mask.sizes() ||
      input_ids.numel() == 0) {
    return absl::InvalidArgumentError(
        "text encoder: input_ids and attention_mask must be non-empty [B, L] "
        "tensors of the same shape");
  }
  if (!IsIntegral(input_ids) || !IsIntegral(attention_mask)) {
    return absl::InvalidArgumentError(
        "text encoder: input_ids and attention_mask must be integer tensors");
  }
  torch::Tensor ids = input_ids.to(options_.device, torch::kLong);
  torch::Tensor mask = attention_mask.to(options_.device, torch::kLong);
  const int64_t lo = ids.min().item<int64_t>();
  const int64_t hi = ids.max().item<int64_t>();
  if (lo < 0 || hi >= config_.vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("text encoder: input_ids must lie in [0, ",
                     config_.vocab_size, "), got [", lo, ", ", hi, "]"));
  }
  if (!(mask.eq(0) | mask.eq(1)).all().item<bool>()) {
    return absl::InvalidArgumentError(
        "text encoder: attention_mask values must be 0 or 1");
  }
  return std::make_pair(ids, mask);
}

absl::StatusOr<torch::Tensor> Gemma2Encoder::EncodePromptEmbeds(
    const torch::Tensor& input_ids, const torch::Tensor& attention_mask) const {
  if (options_.all_layers) {
    LVS_ASSIGN_OR_RETURN(std::vector<torch::Tensor> states,
                         EncodeHiddenStates(input_ids, attention_mask));
    return states[states.size() - 2];
  }
  LVS_ASSIGN_OR_RETURN(auto inputs, PrepareInputs(input_ids, attention_mask));
  try {
    c10::InferenceMode inference;
    return model_.ptr()->forward(inputs.first, inputs.second);
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e, "text encoder forward");
  }
}

absl::StatusOr<std::vector<torch::Tensor>> Gemma2Encoder::EncodeHiddenStates(
    const torch::Tensor& input_ids, const torch::Tensor& attention_mask) const {
  if (!options_.all_layers) {
    return absl::FailedPreconditionError(
        "text encoder: every hidden state needs an encoder built with "
        "all_layers");
  }
  LVS_ASSIGN_OR_RETURN(auto inputs, PrepareInputs(input_ids, attention_mask));
  try {
    c10::InferenceMode inference;
    return model_.ptr()->HiddenStates(inputs.first, inputs.second);
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e, "text encoder forward");
  }
}

}  // namespace lvs::text_encoder
