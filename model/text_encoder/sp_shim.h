/* C ABI of the SentencePiece shim (liblvs_sp_shim.so).
 *
 * Debian's libsentencepiece carries its own protobuf (3.14) and aborts when
 * its symbols bind to the libprotobuf 3.21 that gRPC and LibTorch load. The
 * shim is the only code that includes <sentencepiece_processor.h>; it is
 * built as a separate shared object and loaded with
 * dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND) by tokenizer.cc, which sees
 * only the plain C declarations below (no C++ types cross the boundary, no
 * exception escapes it). This header never includes Abseil or SentencePiece.
 *
 * Thread-safety: a loaded model is immutable; every function except
 * lvs_sp_free may be called concurrently on the same model.
 */
#ifndef LVS_MODEL_TEXT_ENCODER_SP_SHIM_H_
#define LVS_MODEL_TEXT_ENCODER_SP_SHIM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a signature below changes; the loader refuses a mismatch. */
#define LVS_SP_SHIM_ABI_VERSION 1

/* An opaque loaded SentencePiece model. */
typedef struct LvsSpModel LvsSpModel;

/* Returns LVS_SP_SHIM_ABI_VERSION as compiled into the shim. */
int lvs_sp_abi_version(void);

/* Loads the serialized model at `path`. On failure returns NULL and writes a
 * NUL-terminated message (truncated to `err_size` bytes) into `err`. */
LvsSpModel* lvs_sp_load(const char* path, char* err, size_t err_size);

/* Releases a model returned by lvs_sp_load (NULL is ignored). */
void lvs_sp_free(LvsSpModel* model);

/* Encodes `text_len` bytes of UTF-8 `text` into piece ids (no BOS/EOS).
 * Writes min(n, capacity) ids to `ids` and returns n, the full count, so a
 * caller retries with a larger buffer when n > capacity. Returns -1 on error
 * with a message in `err`. */
int64_t lvs_sp_encode(const LvsSpModel* model, const char* text,
                      size_t text_len, int32_t* ids, size_t capacity, char* err,
                      size_t err_size);

/* Returns the number of pieces in the vocabulary. */
int32_t lvs_sp_vocab_size(const LvsSpModel* model);

/* Returns the id of a special piece (-1 when the model defines none):
 * which = 0 pad, 1 eos, 2 bos, 3 unk. */
int32_t lvs_sp_special_id(const LvsSpModel* model, int32_t which);

/* Copies the piece string of `id` into `buf` (NUL-terminated, truncated to
 * `buf_size`) and returns its full length in bytes, or -1 when `id` is out
 * of range. */
int64_t lvs_sp_id_to_piece(const LvsSpModel* model, int32_t id, char* buf,
                           size_t buf_size);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* LVS_MODEL_TEXT_ENCODER_SP_SHIM_H_ */
