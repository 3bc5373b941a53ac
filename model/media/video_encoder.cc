#include "model/media/video_encoder.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "model/media/av_util.h"

extern "C" {
#include <x264.h>
}

namespace lvs::media {
namespace {

constexpr int kMaxDimension = 16384;
constexpr int kMaxThreads = 128;
constexpr const char* kFragmentedMovflags =
    "frag_keyframe+empty_moov+default_base_moof";

// Whether `name` is in the null-terminated `list`.
bool InNameList(absl::string_view name, const char* const* list) {
  for (; *list != nullptr; ++list) {
    if (name == *list) return true;
  }
  return false;
}

// The entries of the null-terminated `list`, comma-separated.
std::string JoinNames(const char* const* list) {
  std::string out;
  for (; *list != nullptr; ++list) {
    absl::StrAppend(&out, out.empty() ? "" : ", ", *list);
  }
  return out;
}

// The even size of `n` under `mode`.
int EvenSize(int n, EvenDimensions mode) {
  return mode == EvenDimensions::kPad ? n + (n & 1) : n - (n & 1);
}

// Extra zeroed bytes after the staged image: swscale's SIMD input loads read
// up to 16 bytes past the last pixel.
constexpr size_t kStagingSlackBytes = 64;

// Copies a `w` x `h` RGB24 image into `out_w` x `out_h` (each one more or
// one less at most): extra columns and rows repeat the last ones, missing
// ones are dropped.
void StageRgb(const uint8_t* src, int w, int h, int out_w, int out_h,
              uint8_t* dst) {
  const size_t src_row = static_cast<size_t>(w) * 3;
  const size_t dst_row = static_cast<size_t>(out_w) * 3;
  const size_t copied = std::min(src_row, dst_row);
  for (int y = 0; y < out_h; ++y) {
    const uint8_t* s = src + static_cast<size_t>(std::min(y, h - 1)) * src_row;
    uint8_t* d = dst + static_cast<size_t>(y) * dst_row;
    std::memcpy(d, s, copied);
    for (int x = w; x < out_w; ++x) std::memcpy(d + x * 3, s + (w - 1) * 3, 3);
  }
}

// The x264-params value "asm=<flags>" selecting every SIMD level x264
// detects except AVX-512, or "" when the CPU has no AVX-512.
std::string X264CpuFlagsWithoutAvx512() {
  x264_param_t detected;
  x264_param_default(&detected);  // Sets .cpu from x264's own detection.
  const uint32_t cpu = detected.cpu;
  x264_param_cleanup(&detected);
  if ((cpu & X264_CPU_AVX512) == 0) return "";
  return absl::StrCat("asm=", cpu & ~X264_CPU_AVX512);
}

// Fails when `dict` still holds entries: options libav did not consume.
absl::Status CheckConsumed(AVDictionary* dict, absl::string_view step) {
  const AVDictionaryEntry* entry =
      av_dict_get(dict, "", nullptr, AV_DICT_IGNORE_SUFFIX);
  if (entry == nullptr) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(step, ": option '", entry->key, "' was not recognised"));
}

// Owns an AVDictionary.
struct DictionaryDeleter {
  void operator()(AVDictionary** dict) const { av_dict_free(dict); }
};

}  // namespace

absl::Status ValidateEncoderOptions(const VideoEncoderOptions& o) {
  auto invalid = [](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(parts...));
  };
  if (o.width <= 0 || o.width > kMaxDimension) {
    return invalid("width must be in [1, ", kMaxDimension, "], got ", o.width);
  }
  if (o.height <= 0 || o.height > kMaxDimension) {
    return invalid("height must be in [1, ", kMaxDimension, "], got ",
                   o.height);
  }
  if (o.even_dimensions == EvenDimensions::kCrop &&
      (o.width < 2 || o.height < 2)) {
    return invalid("width and height must be at least 2 to crop to even, got ",
                   o.width, "x", o.height);
  }
  if (o.fps_num <= 0) return invalid("fps_num must be > 0, got ", o.fps_num);
  if (o.fps_den <= 0) return invalid("fps_den must be > 0, got ", o.fps_den);
  if (o.crf < 0 || o.crf > 51) {
    return invalid("crf must be in [0, 51], got ", o.crf);
  }
  if (!InNameList(o.preset, x264_preset_names)) {
    return invalid("preset '", o.preset, "' is not one of ",
                   JoinNames(x264_preset_names));
  }
  if (!o.tune.empty()) {
    for (absl::string_view tune : absl::StrSplit(o.tune, ',')) {
      if (!InNameList(tune, x264_tune_names)) {
        return invalid("tune '", tune, "' is not one of ",
                       JoinNames(x264_tune_names));
      }
    }
  }
  if (o.gop_size < 0) return invalid("gop_size must be >= 0, got ", o.gop_size);
  if (o.threads < 0 || o.threads > kMaxThreads) {
    return invalid("threads must be in [0, ", kMaxThreads, "], got ",
                   o.threads);
  }
  if (o.max_chunk_bytes <= 0 || o.max_chunk_bytes > kMaxChunkBytes) {
    return invalid("max_chunk_bytes must be in [1, ", kMaxChunkBytes, "], got ",
                   o.max_chunk_bytes);
  }
  return absl::OkStatus();
}

class VideoEncoder::Impl {
 public:
  Impl(const VideoEncoderOptions& options, ChunkSink sink)
      : options_(options),
        sink_(std::move(sink)),
        out_width_(EvenSize(options.width, options.even_dimensions)),
        out_height_(EvenSize(options.height, options.even_dimensions)) {}

  ~Impl() {
    if (format_ != nullptr && io_ == nullptr) avio_closep(&format_->pb);
    avformat_free_context(format_);  // Leaves a custom pb to io_.
  }

  // Opens the codec and the muxer, and writes the header (for a stream, the
  // init segment reaches the sink here). `path` is null for a stream.
  absl::Status Open(const std::string* path, Mp4FileLayout layout) {
    LVS_RETURN_IF_ERROR(AllocMuxer(path));
    LVS_RETURN_IF_ERROR(OpenCodec());
    LVS_RETURN_IF_ERROR(OpenConverter());
    return Sticky(WriteHeader(path, layout));
  }

  absl::Status AddFrame(absl::Span<const uint8_t> rgb24) {
    LVS_RETURN_IF_ERROR(Usable());
    const size_t expected =
        static_cast<size_t>(options_.width) * options_.height * 3;
    if (rgb24.size() != expected) {
      return absl::InvalidArgumentError(
          absl::StrCat("frame ", stats_.frames, ": expected ", options_.width,
                       "x", options_.height, "x3 = ", expected,
                       " RGB24 bytes, got ", rgb24.size()));
    }
    return Sticky(EncodeFrame(rgb24.data()));
  }

  absl::Status Finish() {
    LVS_RETURN_IF_ERROR(Usable());
    finished_ = true;
    return Sticky(Flush());
  }

  int out_width() const { return out_width_; }
  int out_height() const { return out_height_; }
  const EncodeStats& stats() const { return stats_; }

 private:
  // OK while frames may still be added.
  absl::Status Usable() const {
    if (!error_.ok()) return error_;
    if (finished_) {
      return absl::FailedPreconditionError("the encoder is already finished");
    }
    return absl::OkStatus();
  }

  // Records the first failure so that every later call returns it.
  absl::Status Sticky(absl::Status status) {
    if (!status.ok() && error_.ok()) error_ = status;
    return status;
  }

  // The status of an output step: the sink's own error first, then libav's
  // return code, then the AVIO context's sticky error.
  absl::Status OutputStatus(int ret, absl::string_view step) const {
    if (!sink_status_.ok()) return sink_status_;
    if (ret < 0) return AvStatus(ret, step);
    if (format_->pb != nullptr && format_->pb->error < 0) {
      return AvStatus(format_->pb->error, step);
    }
    return absl::OkStatus();
  }

  // The keyframe interval: gop_size, or one second of frames.
  int GopSize() const {
    if (options_.gop_size > 0) return options_.gop_size;
    const double fps = static_cast<double>(options_.fps_num) / options_.fps_den;
    return std::max(1, static_cast<int>(std::lround(fps)));
  }

  absl::Status AllocMuxer(const std::string* path);
  absl::Status OpenCodec();
  absl::Status OpenConverter();
  absl::Status AllocFrame();
  absl::Status WriteHeader(const std::string* path, Mp4FileLayout layout);
  absl::Status EncodeFrame(const uint8_t* rgb);
  absl::Status SendAndDrain(const AVFrame* frame, absl::string_view step);
  absl::Status Flush();

  static int WriteCallback(void* opaque, uint8_t* buf, int size,
                           AVIODataMarkerType type, int64_t time) {
    return static_cast<Impl*>(opaque)->OnWrite(buf, size, type, time);
  }
  int OnWrite(const uint8_t* buf, int size, AVIODataMarkerType type,
              int64_t time);

  VideoEncoderOptions options_;
  ChunkSink sink_;
  const int out_width_;
  const int out_height_;

  CodecContextPtr codec_;
  AVFormatContext* format_ = nullptr;
  CustomIoPtr io_;  // Streaming only; format_->pb points to it.
  AVStream* stream_ = nullptr;
  SwsContextPtr sws_;
  FramePtr frame_;
  PacketPtr packet_;
  std::vector<uint8_t> staged_;  // The frame at the even size, for swscale.

  EncodeStats stats_;
  absl::Status error_;
  absl::Status sink_status_;
  bool finished_ = false;
  // The marker of the last chunk, to find segment starts.
  int last_marker_type_ = -1;
  int64_t last_marker_time_ = 0;
  SegmentKind segment_kind_ = SegmentKind::kInit;
};

absl::Status VideoEncoder::Impl::AllocMuxer(const std::string* path) {
  const int ret = avformat_alloc_output_context2(
      &format_, nullptr, "mp4", path == nullptr ? nullptr : path->c_str());
  if (ret < 0) return AvStatus(ret, "avformat_alloc_output_context2(mp4)");
  if (path != nullptr) return absl::OkStatus();
  io_ = AllocCustomIo(kMaxChunkBytes, /*writable=*/true, this, nullptr, nullptr,
                      nullptr);
  if (io_ == nullptr) return AvStatus(AVERROR(ENOMEM), "avio_alloc_context");
  // With write_data_type set, libav flushes at every marker (header,
  // fragment, trailer) and tells the callback which part it writes.
  io_->write_data_type = &Impl::WriteCallback;
  io_->seekable = 0;
  format_->pb = io_.get();
  format_->flags |= AVFMT_FLAG_CUSTOM_IO;
  return absl::OkStatus();
}

absl::Status VideoEncoder::Impl::OpenCodec() {
  const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
  if (codec == nullptr) {
    return absl::FailedPreconditionError(
        "avcodec_find_encoder_by_name: this libavcodec has no libx264");
  }
  codec_.reset(avcodec_alloc_context3(codec));
  if (codec_ == nullptr) {
    return AvStatus(AVERROR(ENOMEM), "avcodec_alloc_context3(libx264)");
  }
  AVCodecContext* c = codec_.get();
  c->width = out_width_;
  c->height = out_height_;
  c->pix_fmt = AV_PIX_FMT_YUV420P;
  c->time_base = AVRational{options_.fps_den, options_.fps_num};
  c->framerate = AVRational{options_.fps_num, options_.fps_den};
  c->gop_size = GopSize();
  c->keyint_min = c->gop_size;
  c->thread_count = options_.threads;
  // OpenConverter converts with BT.709 coefficients to limited range.
  c->colorspace = AVCOL_SPC_BT709;
  c->color_primaries = AVCOL_PRI_BT709;
  c->color_trc = AVCOL_TRC_BT709;
  c->color_range = AVCOL_RANGE_MPEG;
  // MP4 keeps SPS/PPS in the avcC box, not in the stream.
  if (format_->oformat->flags & AVFMT_GLOBALHEADER) {
    c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  }

  AVDictionary* opts = nullptr;
  std::unique_ptr<AVDictionary*, DictionaryDeleter> opts_owner(&opts);
  av_dict_set(&opts, "preset", options_.preset.c_str(), 0);
  if (!options_.tune.empty()) {
    av_dict_set(&opts, "tune", options_.tune.c_str(), 0);
  }
  av_dict_set_int(&opts, "crf", options_.crf, 0);
  av_dict_set_int(&opts, "sc_threshold", 0, 0);  // No scene-cut keyframes.
  if (!options_.x264_avx512) {
    const std::string asm_flags = X264CpuFlagsWithoutAvx512();
    if (!asm_flags.empty())
      av_dict_set(&opts, "x264-params", asm_flags.c_str(), 0);
  }
  int ret = avcodec_open2(c, codec, &opts);
  if (ret < 0) return AvStatus(ret, "avcodec_open2(libx264)");
  LVS_RETURN_IF_ERROR(CheckConsumed(opts, "avcodec_open2(libx264)"));

  stream_ = avformat_new_stream(format_, nullptr);
  if (stream_ == nullptr) {
    return AvStatus(AVERROR(ENOMEM), "avformat_new_stream");
  }
  stream_->time_base = c->time_base;
  stream_->avg_frame_rate = c->framerate;
  // After avcodec_open2, so that the extradata (SPS/PPS) is copied.
  ret = avcodec_parameters_from_context(stream_->codecpar, c);
  if (ret < 0) return AvStatus(ret, "avcodec_parameters_from_context");
  return absl::OkStatus();
}

absl::Status VideoEncoder::Impl::OpenConverter() {
  // Every frame is staged at the even size so that swscale reads only
  // memory owned here.
  staged_.assign(
      static_cast<size_t>(out_width_) * out_height_ * 3 + kStagingSlackBytes,
      0);
  sws_.reset(sws_getContext(out_width_, out_height_, AV_PIX_FMT_RGB24,
                            out_width_, out_height_, AV_PIX_FMT_YUV420P,
                            SWS_BICUBIC | SWS_ACCURATE_RND, nullptr, nullptr,
                            nullptr));
  if (sws_ == nullptr) {
    return absl::InternalError("sws_getContext(rgb24 -> yuv420p) failed");
  }
  const int* bt709 = sws_getCoefficients(SWS_CS_ITU709);
  sws_setColorspaceDetails(sws_.get(), bt709, /*srcRange=*/1, bt709,
                           /*dstRange=*/0, 0, 1 << 16, 1 << 16);
  packet_.reset(av_packet_alloc());
  if (packet_ == nullptr) return AvStatus(AVERROR(ENOMEM), "av_packet_alloc");
  return AllocFrame();
}

absl::Status VideoEncoder::Impl::AllocFrame() {
  frame_.reset(av_frame_alloc());
  if (frame_ == nullptr) return AvStatus(AVERROR(ENOMEM), "av_frame_alloc");
  frame_->format = AV_PIX_FMT_YUV420P;
  frame_->width = out_width_;
  frame_->height = out_height_;
  const int ret = av_frame_get_buffer(frame_.get(), 0);
  if (ret < 0) return AvStatus(ret, "av_frame_get_buffer(yuv420p)");
  // Zero the row padding, which swscale never writes: x264's SIMD plane
  // copies read past the width, and stale bytes there made the output
  // depend on what the heap held before.
  for (AVBufferRef* buf : frame_->buf) {
    if (buf != nullptr) std::memset(buf->data, 0, buf->size);
  }
  return absl::OkStatus();
}

absl::Status VideoEncoder::Impl::WriteHeader(const std::string* path,
                                             Mp4FileLayout layout) {
  int ret = 0;
  if (path != nullptr) {
    ret = avio_open(&format_->pb, path->c_str(), AVIO_FLAG_WRITE);
    if (ret < 0) return AvStatus(ret, absl::StrCat("avio_open(", *path, ")"));
  }
  AVDictionary* opts = nullptr;
  std::unique_ptr<AVDictionary*, DictionaryDeleter> opts_owner(&opts);
  if (path == nullptr || layout == Mp4FileLayout::kFragmented) {
    av_dict_set(&opts, "movflags", kFragmentedMovflags, 0);
  } else if (layout == Mp4FileLayout::kPlainFaststart) {
    av_dict_set(&opts, "movflags", "faststart", 0);
  }
  ret = avformat_write_header(format_, &opts);
  LVS_RETURN_IF_ERROR(OutputStatus(ret, "avformat_write_header(mp4)"));
  LVS_RETURN_IF_ERROR(CheckConsumed(opts, "avformat_write_header(mp4)"));
  // Push the init segment out now rather than with the first fragment.
  avio_flush(format_->pb);
  return OutputStatus(0, "avio_flush(init segment)");
}

absl::Status VideoEncoder::Impl::EncodeFrame(const uint8_t* rgb) {
  // The encoder copies its input, so the frame is normally free again; if
  // it still holds a reference, encode into a fresh one.
  if (!av_frame_is_writable(frame_.get())) LVS_RETURN_IF_ERROR(AllocFrame());
  StageRgb(rgb, options_.width, options_.height, out_width_, out_height_,
           staged_.data());
  // swscale reads four plane pointers and strides even for packed RGB.
  const uint8_t* const src_planes[4] = {staged_.data(), nullptr, nullptr,
                                        nullptr};
  const int src_strides[4] = {out_width_ * 3, 0, 0, 0};
  const int ret = sws_scale(sws_.get(), src_planes, src_strides, 0, out_height_,
                            frame_->data, frame_->linesize);
  if (ret != out_height_) {
    return absl::InternalError(
        absl::StrCat("sws_scale(rgb24 -> yuv420p) wrote ", ret, " of ",
                     out_height_, " rows"));
  }
  frame_->pts = stats_.frames;
  ++stats_.frames;
  return SendAndDrain(frame_.get(), "avcodec_send_frame");
}

absl::Status VideoEncoder::Impl::SendAndDrain(const AVFrame* frame,
                                              absl::string_view step) {
  int ret = avcodec_send_frame(codec_.get(), frame);
  if (ret < 0) return AvStatus(ret, step);
  for (;;) {
    ret = avcodec_receive_packet(codec_.get(), packet_.get());
    if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return absl::OkStatus();
    if (ret < 0) return AvStatus(ret, "avcodec_receive_packet");
    av_packet_rescale_ts(packet_.get(), codec_->time_base, stream_->time_base);
    packet_->stream_index = stream_->index;
    ++stats_.packets;
    // Takes the packet's reference and leaves packet_ blank.
    ret = av_interleaved_write_frame(format_, packet_.get());
    LVS_RETURN_IF_ERROR(OutputStatus(ret, "av_interleaved_write_frame"));
    if (io_ == nullptr) stats_.bytes = avio_tell(format_->pb);
  }
}

absl::Status VideoEncoder::Impl::Flush() {
  LVS_RETURN_IF_ERROR(SendAndDrain(nullptr, "avcodec_send_frame(flush)"));
  int ret = av_write_trailer(format_);
  LVS_RETURN_IF_ERROR(OutputStatus(ret, "av_write_trailer"));
  if (io_ != nullptr) {
    avio_flush(format_->pb);
    return OutputStatus(0, "avio_flush(trailer)");
  }
  stats_.bytes = avio_size(format_->pb);
  ret = avio_closep(&format_->pb);
  return OutputStatus(ret, "avio_closep");
}

int VideoEncoder::Impl::OnWrite(const uint8_t* buf, int size,
                                AVIODataMarkerType type, int64_t time) {
  if (!sink_status_.ok()) return AVERROR_EXTERNAL;
  // A new (marker, time) pair starts a segment; unknown and flush markers
  // continue the one before.
  bool start = false;
  if (type == AVIO_DATA_MARKER_HEADER || type == AVIO_DATA_MARKER_TRAILER ||
      type == AVIO_DATA_MARKER_SYNC_POINT ||
      type == AVIO_DATA_MARKER_BOUNDARY_POINT) {
    start = type != last_marker_type_ || time != last_marker_time_;
    last_marker_type_ = type;
    last_marker_time_ = time;
    segment_kind_ = type == AVIO_DATA_MARKER_HEADER    ? SegmentKind::kInit
                    : type == AVIO_DATA_MARKER_TRAILER ? SegmentKind::kTrailer
                                                       : SegmentKind::kMedia;
  }
  for (int done = 0; done < size;) {
    const int n = std::min(size - done, options_.max_chunk_bytes);
    Chunk chunk;
    chunk.offset = stats_.bytes;
    chunk.bytes = absl::MakeConstSpan(buf + done, n);
    chunk.kind = segment_kind_;
    chunk.segment_start = start && done == 0;
    sink_status_ = sink_(chunk);
    if (!sink_status_.ok()) return AVERROR_EXTERNAL;
    stats_.bytes += n;
    ++stats_.chunks;
    done += n;
  }
  return size;
}

VideoEncoder::VideoEncoder(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

VideoEncoder::~VideoEncoder() = default;

absl::StatusOr<std::unique_ptr<VideoEncoder>> VideoEncoder::CreateStreaming(
    const VideoEncoderOptions& options, ChunkSink sink) {
  LVS_RETURN_IF_ERROR(ValidateEncoderOptions(options));
  if (!sink) return absl::InvalidArgumentError("sink must not be empty");
  auto impl = std::make_unique<Impl>(options, std::move(sink));
  LVS_RETURN_IF_ERROR(impl->Open(nullptr, Mp4FileLayout::kFragmented));
  return std::unique_ptr<VideoEncoder>(new VideoEncoder(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<VideoEncoder>> VideoEncoder::CreateFile(
    const VideoEncoderOptions& options, const std::string& path,
    Mp4FileLayout layout) {
  LVS_RETURN_IF_ERROR(ValidateEncoderOptions(options));
  if (path.empty()) return absl::InvalidArgumentError("path must not be empty");
  auto impl = std::make_unique<Impl>(options, nullptr);
  LVS_RETURN_IF_ERROR(impl->Open(&path, layout));
  return std::unique_ptr<VideoEncoder>(new VideoEncoder(std::move(impl)));
}

absl::Status VideoEncoder::AddFrame(absl::Span<const uint8_t> rgb24) {
  return impl_->AddFrame(rgb24);
}

absl::Status VideoEncoder::Finish() { return impl_->Finish(); }

int VideoEncoder::output_width() const { return impl_->out_width(); }

int VideoEncoder::output_height() const { return impl_->out_height(); }

const EncodeStats& VideoEncoder::stats() const { return impl_->stats(); }

}  // namespace lvs::media
