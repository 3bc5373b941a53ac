#include "model/media/video_decoder.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/media/av_util.h"

extern "C" {
#include <libavutil/pixdesc.h>
}

namespace lvs::media {
namespace {

constexpr int kReadBufferBytes = 64 * 1024;

// Where the container comes from: a path, or bytes held in memory.
struct Source {
  std::string label;  // The path, or the buffer's label.
  std::shared_ptr<const std::vector<uint8_t>> bytes;  // Null for a file.
};

// Read position in an in-memory container (the opaque of its AVIOContext).
struct BufferReader {
  const std::vector<uint8_t>* bytes = nullptr;
  int64_t pos = 0;

  static int Read(void* opaque, uint8_t* buf, int size) {
    auto* r = static_cast<BufferReader*>(opaque);
    const int64_t left = static_cast<int64_t>(r->bytes->size()) - r->pos;
    if (left <= 0) return AVERROR_EOF;
    const int n = static_cast<int>(std::min<int64_t>(left, size));
    std::memcpy(buf, r->bytes->data() + r->pos, n);
    r->pos += n;
    return n;
  }

  static int64_t Seek(void* opaque, int64_t offset, int whence) {
    auto* r = static_cast<BufferReader*>(opaque);
    const auto size = static_cast<int64_t>(r->bytes->size());
    switch (whence & ~AVSEEK_FORCE) {
      case AVSEEK_SIZE:
        return size;
      case SEEK_SET:
        break;
      case SEEK_CUR:
        offset += r->pos;
        break;
      case SEEK_END:
        offset += size;
        break;
      default:
        return AVERROR(EINVAL);
    }
    if (offset < 0 || offset > size) return AVERROR(EINVAL);
    r->pos = offset;
    return offset;
  }
};

// One opened container with its best video stream.
struct Input {
  BufferReader reader;
  CustomIoPtr io;  // Buffers only; format->pb points to it.
  AVFormatContext* format = nullptr;
  AVStream* stream = nullptr;
  const AVCodec* codec = nullptr;

  ~Input() { avformat_close_input(&format); }  // Before io is freed.
};

absl::StatusOr<std::unique_ptr<Input>> OpenInput(const Source& source) {
  auto input = std::make_unique<Input>();
  AVFormatContext* format = avformat_alloc_context();
  if (format == nullptr)
    return AvStatus(AVERROR(ENOMEM), "avformat_alloc_context");
  if (source.bytes != nullptr) {
    input->reader.bytes = source.bytes.get();
    input->io =
        AllocCustomIo(kReadBufferBytes, /*writable=*/false, &input->reader,
                      &BufferReader::Read, nullptr, &BufferReader::Seek);
    if (input->io == nullptr) {
      avformat_free_context(format);
      return AvStatus(AVERROR(ENOMEM), "avio_alloc_context");
    }
    format->pb = input->io.get();
    format->flags |= AVFMT_FLAG_CUSTOM_IO;
  }
  // Frees `format` on failure.
  int ret = avformat_open_input(
      &format, source.bytes == nullptr ? source.label.c_str() : nullptr,
      nullptr, nullptr);
  if (ret < 0) {
    return AvStatus(ret,
                    absl::StrCat("avformat_open_input(", source.label, ")"));
  }
  input->format = format;
  ret = avformat_find_stream_info(format, nullptr);
  if (ret < 0) {
    return AvStatus(
        ret, absl::StrCat("avformat_find_stream_info(", source.label, ")"));
  }
  ret =
      av_find_best_stream(format, AVMEDIA_TYPE_VIDEO, -1, -1, &input->codec, 0);
  if (ret < 0) {
    return AvStatus(
        ret, absl::StrCat("av_find_best_stream(video) in ", source.label));
  }
  input->stream = format->streams[ret];
  return input;
}

// Counts the packets of the video stream with a second pass over the input.
absl::StatusOr<int64_t> CountPackets(const Source& source) {
  LVS_ASSIGN_OR_RETURN(std::unique_ptr<Input> input, OpenInput(source));
  PacketPtr packet(av_packet_alloc());
  if (packet == nullptr) return AvStatus(AVERROR(ENOMEM), "av_packet_alloc");
  int64_t count = 0;
  for (;;) {
    const int ret = av_read_frame(input->format, packet.get());
    if (ret == AVERROR_EOF) return count;
    if (ret < 0) {
      return AvStatus(ret, absl::StrCat("av_read_frame(", source.label, ")"));
    }
    if (packet->stream_index == input->stream->index) ++count;
    av_packet_unref(packet.get());
  }
}

}  // namespace

class VideoDecoder::Impl {
 public:
  explicit Impl(Source source) : source_(std::move(source)) {}

  absl::Status Open() {
    LVS_ASSIGN_OR_RETURN(input_, OpenInput(source_));
    const AVStream* stream = input_->stream;
    const AVCodecParameters* par = stream->codecpar;
    info_.container = input_->format->iformat->name;
    info_.codec = avcodec_get_name(par->codec_id);
    const char* pix =
        av_get_pix_fmt_name(static_cast<AVPixelFormat>(par->format));
    info_.pixel_format = pix != nullptr ? pix : "unknown";
    info_.width = par->width;
    info_.height = par->height;
    const AVRational fps =
        av_guess_frame_rate(input_->format, input_->stream, nullptr);
    if (fps.num > 0 && fps.den > 0) {
      info_.fps_num = fps.num;
      info_.fps_den = fps.den;
    }
    if (stream->duration != AV_NOPTS_VALUE) {
      info_.duration_seconds = stream->duration * av_q2d(stream->time_base);
    } else if (input_->format->duration != AV_NOPTS_VALUE) {
      info_.duration_seconds =
          static_cast<double>(input_->format->duration) / AV_TIME_BASE;
    }
    if (stream->nb_frames > 0) {
      info_.frames = stream->nb_frames;
    } else {
      LVS_ASSIGN_OR_RETURN(info_.frames, CountPackets(source_));
    }
    return OpenCodec();
  }

  const VideoStreamInfo& info() const { return info_; }

  absl::StatusOr<bool> Next(RgbFrame* out) {
    for (;;) {
      int ret = avcodec_receive_frame(codec_.get(), frame_.get());
      if (ret == 0) {
        LVS_RETURN_IF_ERROR(Convert(out));
        return true;
      }
      if (ret == AVERROR_EOF) return false;
      if (ret != AVERROR(EAGAIN)) {
        return AvStatus(
            ret, absl::StrCat("avcodec_receive_frame(", source_.label, ")"));
      }
      LVS_RETURN_IF_ERROR(Feed());
    }
  }

 private:
  absl::Status OpenCodec() {
    const std::string step = absl::StrCat("opening the ", info_.codec,
                                          " decoder for ", source_.label);
    if (input_->codec == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(step, ": this libavcodec cannot decode it"));
    }
    codec_.reset(avcodec_alloc_context3(input_->codec));
    frame_.reset(av_frame_alloc());
    packet_.reset(av_packet_alloc());
    if (codec_ == nullptr || frame_ == nullptr || packet_ == nullptr) {
      return AvStatus(AVERROR(ENOMEM), step);
    }
    int ret =
        avcodec_parameters_to_context(codec_.get(), input_->stream->codecpar);
    if (ret < 0) return AvStatus(ret, step);
    codec_->pkt_timebase = input_->stream->time_base;
    ret = avcodec_open2(codec_.get(), input_->codec, nullptr);
    if (ret < 0) return AvStatus(ret, step);
    return absl::OkStatus();
  }

  // Sends the next packet of the stream to the decoder (or the flush at the
  // end of the input).
  absl::Status Feed() {
    for (;;) {
      if (input_done_) {
        return absl::InternalError(absl::StrCat("decoder for ", source_.label,
                                                " wants input after the end"));
      }
      int ret = av_read_frame(input_->format, packet_.get());
      if (ret == AVERROR_EOF) {
        input_done_ = true;
        ret = avcodec_send_packet(codec_.get(), nullptr);
        if (ret < 0) return AvStatus(ret, "avcodec_send_packet(flush)");
        return absl::OkStatus();
      }
      if (ret < 0) {
        return AvStatus(ret,
                        absl::StrCat("av_read_frame(", source_.label, ")"));
      }
      const bool ours = packet_->stream_index == input_->stream->index;
      if (ours) ret = avcodec_send_packet(codec_.get(), packet_.get());
      av_packet_unref(packet_.get());
      if (ret < 0) {
        return AvStatus(
            ret, absl::StrCat("avcodec_send_packet(", source_.label, ")"));
      }
      if (ours) return absl::OkStatus();
    }
  }

  absl::Status Convert(RgbFrame* out) {
    const AVFrame* f = frame_.get();
    const bool full_range = f->color_range == AVCOL_RANGE_JPEG ||
                            f->format == AV_PIX_FMT_YUVJ420P ||
                            f->format == AV_PIX_FMT_YUVJ422P ||
                            f->format == AV_PIX_FMT_YUVJ444P;
    const ConverterKey key{f->width, f->height, f->format, f->colorspace,
                           full_range};
    if (sws_ == nullptr || !(key == sws_key_)) {
      sws_.reset(sws_getContext(
          f->width, f->height, static_cast<AVPixelFormat>(f->format), f->width,
          f->height, AV_PIX_FMT_RGB24,
          SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr,
          nullptr));
      if (sws_ == nullptr) {
        return absl::InternalError(absl::StrCat(
            "sws_getContext(",
            av_get_pix_fmt_name(static_cast<AVPixelFormat>(f->format)),
            " -> rgb24) failed for ", source_.label));
      }
      const int* coefficients = sws_getCoefficients(f->colorspace);
      sws_setColorspaceDetails(sws_.get(), coefficients, full_range ? 1 : 0,
                               coefficients, /*dstRange=*/1, 0, 1 << 16,
                               1 << 16);
      sws_key_ = key;
    }
    out->width = f->width;
    out->height = f->height;
    out->time_seconds =
        f->best_effort_timestamp == AV_NOPTS_VALUE
            ? 0
            : f->best_effort_timestamp * av_q2d(input_->stream->time_base);
    out->rgb.resize(static_cast<size_t>(f->width) * f->height * 3);
    // swscale reads four plane pointers and strides even for packed RGB.
    uint8_t* const dst[4] = {out->rgb.data(), nullptr, nullptr, nullptr};
    const int dst_stride[4] = {f->width * 3, 0, 0, 0};
    const int rows = sws_scale(sws_.get(), f->data, f->linesize, 0, f->height,
                               dst, dst_stride);
    av_frame_unref(frame_.get());
    if (rows != out->height) {
      return absl::InternalError(absl::StrCat("sws_scale(-> rgb24) wrote ",
                                              rows, " of ", out->height,
                                              " rows for ", source_.label));
    }
    return absl::OkStatus();
  }

  // What a converter was built for.
  struct ConverterKey {
    int width = 0;
    int height = 0;
    int format = -1;
    int colorspace = -1;
    bool full_range = false;
    bool operator==(const ConverterKey& o) const {
      return width == o.width && height == o.height && format == o.format &&
             colorspace == o.colorspace && full_range == o.full_range;
    }
  };

  Source source_;
  std::unique_ptr<Input> input_;
  VideoStreamInfo info_;
  CodecContextPtr codec_;
  FramePtr frame_;
  PacketPtr packet_;
  SwsContextPtr sws_;
  ConverterKey sws_key_;
  bool input_done_ = false;
};

VideoDecoder::VideoDecoder(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

VideoDecoder::~VideoDecoder() = default;

absl::StatusOr<std::unique_ptr<VideoDecoder>> VideoDecoder::OpenFile(
    const std::string& path) {
  auto impl = std::make_unique<Impl>(Source{path, nullptr});
  LVS_RETURN_IF_ERROR(impl->Open());
  return std::unique_ptr<VideoDecoder>(new VideoDecoder(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<VideoDecoder>> VideoDecoder::OpenBuffer(
    std::vector<uint8_t> bytes, std::string label) {
  auto shared = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
  auto impl =
      std::make_unique<Impl>(Source{std::move(label), std::move(shared)});
  LVS_RETURN_IF_ERROR(impl->Open());
  return std::unique_ptr<VideoDecoder>(new VideoDecoder(std::move(impl)));
}

const VideoStreamInfo& VideoDecoder::info() const { return impl_->info(); }

absl::StatusOr<bool> VideoDecoder::Next(RgbFrame* frame) {
  return impl_->Next(frame);
}

absl::StatusOr<std::vector<RgbFrame>> VideoDecoder::DecodeAll(
    int64_t max_frames) {
  std::vector<RgbFrame> frames;
  while (max_frames < 0 || static_cast<int64_t>(frames.size()) < max_frames) {
    RgbFrame frame;
    LVS_ASSIGN_OR_RETURN(bool more, Next(&frame));
    if (!more) break;
    frames.push_back(std::move(frame));
  }
  return frames;
}

}  // namespace lvs::media
