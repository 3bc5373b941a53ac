#include "model/media/av_util.h"

#include <cerrno>

#include "absl/strings/str_cat.h"

extern "C" {
#include <libavutil/error.h>
#include <libavutil/mem.h>
}

namespace lvs::media {

std::string AvErrorString(int errnum) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(errnum, text, sizeof(text));
  return text;
}

absl::Status AvStatus(int errnum, absl::string_view step) {
  std::string message = absl::StrCat(step, ": ", AvErrorString(errnum),
                                     " (libav error ", errnum, ")");
  if (errnum == AVERROR(ENOMEM)) return absl::ResourceExhaustedError(message);
  if (errnum == AVERROR(EINVAL) || errnum == AVERROR_OPTION_NOT_FOUND) {
    return absl::InvalidArgumentError(message);
  }
  if (errnum == AVERROR(ENOENT)) return absl::NotFoundError(message);
  if (errnum == AVERROR_INVALIDDATA) return absl::DataLossError(message);
  return absl::InternalError(message);
}

void CustomIoDeleter::operator()(AVIOContext* ctx) const {
  if (ctx == nullptr) return;
  av_freep(&ctx->buffer);
  avio_context_free(&ctx);
}

CustomIoPtr AllocCustomIo(int buffer_bytes, bool writable, void* opaque,
                          int (*read)(void* opaque, uint8_t* buf, int size),
                          int (*write)(void* opaque, uint8_t* buf, int size),
                          int64_t (*seek)(void* opaque, int64_t offset,
                                          int whence)) {
  auto* buffer = static_cast<unsigned char*>(av_malloc(buffer_bytes));
  if (buffer == nullptr) return nullptr;
  AVIOContext* ctx = avio_alloc_context(buffer, buffer_bytes, writable ? 1 : 0,
                                        opaque, read, write, seek);
  if (ctx == nullptr) {
    av_free(buffer);
    return nullptr;
  }
  return CustomIoPtr(ctx);
}

}  // namespace lvs::media
