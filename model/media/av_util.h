// Internal helpers shared by the encoder and decoder of lvs_media: libav
// error codes turned into absl::Status, and owning handles for libav objects
// (torch-free).
//
// Thread-safety: stateless functions and move-only handles; a handle is used
// by one thread at a time, like the object it owns.
#ifndef LVS_MODEL_MEDIA_AV_UTIL_H_
#define LVS_MODEL_MEDIA_AV_UTIL_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavformat/avio.h>
#include <libswscale/swscale.h>
}

namespace lvs::media {

// The text of libav error `errnum` (what the av_err2str macro gives in C).
std::string AvErrorString(int errnum);

// Turns libav error `errnum` from `step` into a Status whose message names
// the step and the libav text: ENOMEM -> RESOURCE_EXHAUSTED, EINVAL and
// option errors -> INVALID_ARGUMENT, ENOENT -> NOT_FOUND, invalid data ->
// DATA_LOSS, anything else -> INTERNAL.
absl::Status AvStatus(int errnum, absl::string_view step);

// Frees an AVCodecContext.
struct CodecContextDeleter {
  void operator()(AVCodecContext* ctx) const { avcodec_free_context(&ctx); }
};
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;

// Frees an AVFrame and its buffers.
struct FrameDeleter {
  void operator()(AVFrame* frame) const { av_frame_free(&frame); }
};
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;

// Frees an AVPacket and its buffer.
struct PacketDeleter {
  void operator()(AVPacket* packet) const { av_packet_free(&packet); }
};
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;

// Frees a SwsContext.
struct SwsContextDeleter {
  void operator()(SwsContext* ctx) const { sws_freeContext(ctx); }
};
using SwsContextPtr = std::unique_ptr<SwsContext, SwsContextDeleter>;

// Frees a custom AVIOContext (from avio_alloc_context) and its buffer. The
// buffer is freed through ctx->buffer because libav may have replaced the
// one passed at allocation.
struct CustomIoDeleter {
  void operator()(AVIOContext* ctx) const;
};
using CustomIoPtr = std::unique_ptr<AVIOContext, CustomIoDeleter>;

// Allocates a custom AVIOContext with an av_malloc'ed buffer of
// `buffer_bytes`. Returns nullptr when memory runs out.
CustomIoPtr AllocCustomIo(int buffer_bytes, bool writable, void* opaque,
                          int (*read)(void* opaque, uint8_t* buf, int size),
                          int (*write)(void* opaque, uint8_t* buf, int size),
                          int64_t (*seek)(void* opaque, int64_t offset,
                                          int whence));

}  // namespace lvs::media

#endif  // LVS_MODEL_MEDIA_AV_UTIL_H_
