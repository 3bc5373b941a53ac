// Caption features as the generation pipeline computes them.
#include "model/pipeline/caption_encoder.h"

#include <torch/torch.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/pipeline/pipeline.h"
#include "model/text_encoder/gemma2_config.h"

namespace lvs::pipeline {
namespace fs = std::filesystem;

const char* DefaultSystemPrompt() { return pipeline::kSystemPrompt; }

absl::Status CaptionEncoder::CheckDir(const std::string& dir) {
  if (!fs::is_directory(dir)) {
    return absl::InvalidArgumentError(absl::StrCat(dir, " is not a directory"));
  }
  LVS_RETURN_IF_ERROR(
      text_encoder::Gemma2Config::FromFile(dir + "/config.json").status());
  if (!fs::exists(dir + "/tokenizer.model")) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, "/tokenizer.model does not exist"));
  }
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name == "model.safetensors.index.json" ||
        e.path().extension() == ".safetensors") {
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat(dir, " holds no safetensors checkpoint"));
}

absl::StatusOr<std::unique_ptr<CaptionEncoder>> CaptionEncoder::Create(
    const std::string& dir, const CaptionEncoderOptions& options) {
  if (options.max_tokens < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max caption tokens must be at least 2, got ", options.max_tokens));
  }
  LVS_RETURN_IF_ERROR(CheckDir(dir));
  text_encoder::TokenizerOptions to;
  to.max_length = options.max_tokens;
  LVS_ASSIGN_OR_RETURN(
      std::unique_ptr<text_encoder::Tokenizer> tokenizer,
      text_encoder::Tokenizer::Create(dir + "/tokenizer.model", to));
  text_encoder::TextEncoderOptions eo;
  eo.device = options.device;
  eo.dtype = options.dtype;
  LVS_ASSIGN_OR_RETURN(std::unique_ptr<text_encoder::Gemma2Encoder> encoder,
                       text_encoder::Gemma2Encoder::Create(dir, eo));
  return std::unique_ptr<CaptionEncoder>(
      new CaptionEncoder(std::move(tokenizer), std::move(encoder), options));
}

absl::StatusOr<torch::Tensor> CaptionEncoder::Encode(const std::string& caption,
                                                     bool* truncated) const {
  LVS_ASSIGN_OR_RETURN(text_encoder::TokenizedBatch batch,
                       tokenizer_->Encode({options_.system_prompt + caption}));
  if (truncated) *truncated = batch.truncated[0];
  try {
    torch::NoGradGuard no_grad;
    LVS_ASSIGN_OR_RETURN(
        torch::Tensor feats,
        encoder_->EncodePromptEmbeds(batch.input_ids, batch.attention_mask));
    // Right padding: the real tokens are the first mask.sum() rows.
    const int64_t n = batch.attention_mask[0].sum().item<int64_t>();
    return feats[0]
        .narrow(0, 0, n)
        .to(torch::kCPU)
        .to(torch::kBFloat16)
        .contiguous();
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("encoding a caption: ", e.what_without_backtrace()));
  }
}

}  // namespace lvs::pipeline
