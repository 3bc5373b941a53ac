// Gemma tokenizer: SentencePiece ids as Lumina-Video's encode_prompt feeds
// them to the text encoder (golden README 4.1).
//
// `Encode` prepends BOS (never EOS), truncates every row to `max_length` ids
// (BOS included), pads on the right with the pad id to the longest row
// rounded up to a multiple of `pad_to_multiple_of`, and returns the attention
// mask plus each text's untruncated length so callers can warn.
//
// SentencePiece itself lives in liblvs_sp_shim.so, loaded with
// dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND) so that its private protobuf
// never meets the one gRPC and LibTorch load (see sp_shim.h). The shim is
// looked up, in order, at: $LVS_SP_SHIM (only there when set), next to the
// executable, in the executable's ../lib, and at its build-tree path.
//
// Thread-safety: a Tokenizer is immutable after Create(); Encode may be
// called concurrently.
#ifndef LVS_MODEL_TEXT_ENCODER_TOKENIZER_H_
#define LVS_MODEL_TEXT_ENCODER_TOKENIZER_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/text_encoder/sp_shim.h"

namespace lvs::text_encoder {

// The resolved entry points of the dlopen'ed shim (process-wide, never
// unloaded; defined in tokenizer.cc).
struct SpShim;

// How a batch of texts becomes padded ids (defaults: the Lumina-Video call).
struct TokenizerOptions {
  // Longest row kept, BOS included; longer rows are cut at the end.
  int64_t max_length = 256;
  // Padded length is the longest row rounded up to a multiple of this.
  int64_t pad_to_multiple_of = 8;
};

// The tokenizer's output for a batch of texts.
struct TokenizedBatch {
  at::Tensor input_ids;       // [B, L] int64, right-padded with the pad id.
  at::Tensor attention_mask;  // [B, L] int64, 1 on real ids, 0 on padding.
  // Per text: number of ids (BOS included) before truncation.
  std::vector<int64_t> original_lengths;
  // Per text: true when the row was cut to max_length.
  std::vector<bool> truncated;
};

// A loaded SentencePiece model plus the batching rules above.
class Tokenizer {
 public:
  // Loads `model_path` (a tokenizer.model). Errors name the file, or every
  // place the shim library was looked for.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(
      const std::string& model_path, const TokenizerOptions& options = {});

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Returns the SentencePiece ids of `text` (no BOS, no truncation).
  absl::StatusOr<std::vector<int64_t>> EncodeIds(absl::string_view text) const;

  // Tokenizes a batch (see the file comment). REQUIRES: !texts.empty().
  absl::StatusOr<TokenizedBatch> Encode(
      const std::vector<std::string>& texts) const;

  // Returns the piece string of `id` ("" when out of range).
  std::string IdToPiece(int64_t id) const;

  // The special ids of the model and its vocabulary size.
  int64_t bos_id() const { return bos_id_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t vocab_size() const { return vocab_size_; }

  // The path of the shim library that was loaded.
  const std::string& shim_path() const;

 private:
  struct ModelDeleter {
    const SpShim* shim;
    void operator()(LvsSpModel* model) const;
  };

  Tokenizer(const SpShim* shim, std::unique_ptr<LvsSpModel, ModelDeleter> model,
            const TokenizerOptions& options);

  const SpShim* shim_;
  std::unique_ptr<LvsSpModel, ModelDeleter> model_;
  TokenizerOptions options_;
  int64_t bos_id_ = -1;
  int64_t pad_id_ = -1;
  int64_t vocab_size_ = 0;
};

}  // namespace lvs::text_encoder

#endif  // LVS_MODEL_TEXT_ENCODER_TOKENIZER_H_
