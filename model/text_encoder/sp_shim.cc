// The SentencePiece shim: the only translation unit that includes
// <sentencepiece_processor.h>. Built as liblvs_sp_shim.so and loaded with
// dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND) (see sp_shim.h for why).
// It must never include Abseil: SentencePiece's header declares its own
// `absl::string_view`.
//
// Thread-safety: SentencePieceProcessor's const methods are thread-safe, so
// every function except lvs_sp_free may run concurrently on one model.
#include "model/text_encoder/sp_shim.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

struct LvsSpModel {
  sentencepiece::SentencePieceProcessor processor;
};

namespace {

// Copies `text` into `out` as a NUL-terminated string truncated to `size`.
void CopyCString(const std::string& text, char* out, size_t size) {
  if (out == nullptr || size == 0) return;
  const size_t n = std::min(text.size(), size - 1);
  std::memcpy(out, text.data(), n);
  out[n] = '\0';
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int lvs_sp_abi_version(void) {
  return LVS_SP_SHIM_ABI_VERSION;
}

__attribute__((visibility("default"))) LvsSpModel* lvs_sp_load(
    const char* path, char* err, size_t err_size) {
  try {
    auto model = std::make_unique<LvsSpModel>();
    const sentencepiece::util::Status status = model->processor.Load(path);
    if (!status.ok()) {
      CopyCString(status.ToString(), err, err_size);
      return nullptr;
    }
    return model.release();
  } catch (const std::exception& e) {
    CopyCString(e.what(), err, err_size);
  } catch (...) {
    CopyCString("unknown exception in SentencePiece Load", err, err_size);
  }
  return nullptr;
}

__attribute__((visibility("default"))) void lvs_sp_free(LvsSpModel* model) {
  delete model;
}

__attribute__((visibility("default"))) int64_t lvs_sp_encode(
    const LvsSpModel* model, const char* text, size_t text_len, int32_t* ids,
    size_t capacity, char* err, size_t err_size) {
  try {
    std::vector<int> out;
    const sentencepiece::util::Status status =
        model->processor.Encode(std::string_view(text, text_len), &out);
    if (!status.ok()) {
      CopyCString(status.ToString(), err, err_size);
      return -1;
    }
    for (size_t i = 0; i < out.size() && i < capacity; ++i) ids[i] = out[i];
    return static_cast<int64_t>(out.size());
  } catch (const std::exception& e) {
    CopyCString(e.what(), err, err_size);
  } catch (...) {
    CopyCString("unknown exception in SentencePiece Encode", err, err_size);
  }
  return -1;
}

__attribute__((visibility("default"))) int32_t lvs_sp_vocab_size(
    const LvsSpModel* model) {
  return model->processor.GetPieceSize();
}

__attribute__((visibility("default"))) int32_t lvs_sp_special_id(
    const LvsSpModel* model, int32_t which) {
  switch (which) {
    case 0:
      return model->processor.pad_id();
    case 1:
      return model->processor.eos_id();
    case 2:
      return model->processor.bos_id();
    case 3:
      return model->processor.unk_id();
    default:
      return -1;
  }
}

__attribute__((visibility("default"))) int64_t lvs_sp_id_to_piece(
    const LvsSpModel* model, int32_t id, char* buf, size_t buf_size) {
  if (id < 0 || id >= model->processor.GetPieceSize()) return -1;
  try {
    const std::string& piece = model->processor.IdToPiece(id);
    CopyCString(piece, buf, buf_size);
    return static_cast<int64_t>(piece.size());
  } catch (...) {
    return -1;
  }
}

}  // extern "C"
