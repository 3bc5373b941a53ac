// Conformance runners of the text encoder: `tokenizer`, `text_encoder`,
// `text_encoder_bf16`. Texts come from each case of the sidecar; the
// tokenizer and checkpoint from `<golden>/text_encoder`. Every case yields
// `<case>.input_ids` and `<case>.attention_mask`; encoder files also
// `<case>.prompt_embeds` (hidden_states[-2] from the production encoder,
// which skips the last layer) and, when the golden file stores them,
// `<case>.hidden_states` from a second encoder built with every layer.
//
// Thread-safety: runners are called from the single-threaded driver.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/text_encoder/gemma2_encoder.h"
#include "model/text_encoder/tokenizer.h"
#include "tools/lvs_model/conform.h"

namespace lvs::conform {
namespace {

using text_encoder::Gemma2Encoder;
using text_encoder::TextEncoderOptions;
using text_encoder::TokenizedBatch;
using text_encoder::Tokenizer;
using text_encoder::TokenizerOptions;

std::string EncoderDir(const ConformCase& c) {
  return c.golden_dir + "/text_encoder";
}

// The sidecar's `cases` object, or an error naming the file.
absl::StatusOr<nlohmann::json> Cases(const ConformCase& c) {
  auto it = c.sidecar.find("cases");
  if (it == c.sidecar.end() || !it->is_object() || it->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.name, ".json: no \"cases\" object"));
  }
  return *it;
}

// The `texts` list of one case.
absl::StatusOr<std::vector<std::string>> Texts(const ConformCase& c,
                                               const std::string& name,
                                               const nlohmann::json& spec) {
  auto it = spec.find("texts");
  if (it == spec.end() || !it->is_array() || it->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.name, ".json: case \"", name, "\" has no \"texts\" list"));
  }
  std::vector<std::string> texts;
  for (const nlohmann::json& t : *it) {
    if (!t.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.name, ".json: case \"", name, "\": texts must be strings"));
    }
    texts.push_back(t.get<std::string>());
  }
  return texts;
}

// Tokenizer options from a case's `call` (the reference tokenizer kwargs).
TokenizerOptions CallOptions(const nlohmann::json& spec) {
  TokenizerOptions options;
  auto call = spec.find("call");
  if (call == spec.end() || !call->is_object()) return options;
  options.max_length = call->value("max_length", options.max_length);
  options.pad_to_multiple_of =
      call->value("pad_to_multiple_of", options.pad_to_multiple_of);
  return options;
}

absl::StatusOr<io::TensorMap> RunTokenizer(const ConformCase& c) {
  LVS_ASSIGN_OR_RETURN(nlohmann::json cases, Cases(c));
  io::TensorMap out;
  for (const auto& [name, spec] : cases.items()) {
    LVS_ASSIGN_OR_RETURN(std::vector<std::string> texts, Texts(c, name, spec));
    LVS_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                         Tokenizer::Create(EncoderDir(c) + "/tokenizer.model",
                                           CallOptions(spec)));
    LVS_ASSIGN_OR_RETURN(TokenizedBatch batch, tokenizer->Encode(texts));
    out[name + ".input_ids"] = batch.input_ids;
    out[name + ".attention_mask"] = batch.attention_mask;
  }
  return out;
}

bool WantsHiddenStates(const ConformCase& c) {
  for (const auto& [key, tensor] : c.golden) {
    if (absl::EndsWith(key, ".hidden_states")) return true;
  }
  return false;
}

absl::StatusOr<io::TensorMap> RunTextEncoder(const ConformCase& c) {
  LVS_ASSIGN_OR_RETURN(nlohmann::json cases, Cases(c));
  TextEncoderOptions options;
  options.dtype = c.bf16 ? torch::kBFloat16 : torch::kFloat;
  options.device = c.device;
  LVS_ASSIGN_OR_RETURN(std::unique_ptr<Gemma2Encoder> encoder,
                       Gemma2Encoder::Create(EncoderDir(c), options));
  std::unique_ptr<Gemma2Encoder> full;
  if (WantsHiddenStates(c)) {
    options.all_layers = true;
    LVS_ASSIGN_OR_RETURN(full, Gemma2Encoder::Create(EncoderDir(c), options));
  }
  io::TensorMap out;
  for (const auto& [name, spec] : cases.items()) {
    LVS_ASSIGN_OR_RETURN(std::vector<std::string> texts, Texts(c, name, spec));
    LVS_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                         Tokenizer::Create(EncoderDir(c) + "/tokenizer.model",
                                           CallOptions(spec)));
    LVS_ASSIGN_OR_RETURN(TokenizedBatch batch, tokenizer->Encode(texts));
    out[name + ".input_ids"] = batch.input_ids;
    out[name + ".attention_mask"] = batch.attention_mask;
    LVS_ASSIGN_OR_RETURN(
        out[name + ".prompt_embeds"],
        encoder->EncodePromptEmbeds(batch.input_ids, batch.attention_mask));
    if (full != nullptr) {
      LVS_ASSIGN_OR_RETURN(
          std::vector<torch::Tensor> states,
          full->EncodeHiddenStates(batch.input_ids, batch.attention_mask));
      out[name + ".hidden_states"] = torch::stack(states);
    }
  }
  return out;
}

LVS_REGISTER_CONFORM("tokenizer", RunTokenizer);
LVS_REGISTER_CONFORM("text_encoder", RunTextEncoder);
LVS_REGISTER_CONFORM("text_encoder_bf16", RunTextEncoder);

}  // namespace
}  // namespace lvs::conform
