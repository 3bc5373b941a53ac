// H.264 (libx264) video encoder writing MP4 with FFmpeg's libraries
// (libavcodec, libavformat, libswscale; torch-free). This header is the
// documentation of lvs_media's encoder; video_decoder.h reads the output back.
//
// Outputs
//  * Streaming (CreateStreaming): fragmented MP4 with movflags
//    frag_keyframe+empty_moov+default_base_moof, written through a custom
//    AVIOContext (an av_malloc'ed kMaxChunkBytes buffer, freed through
//    ctx->buffer), so bytes leave through a ChunkSink while the video is
//    still being encoded:
//      ftyp moov | moof mdat | moof mdat | ... | mfra
//      init        fragment 1  fragment 2        trailer (Finish)
//    The init segment is delivered before CreateStreaming returns; each
//    fragment holds one GOP and is delivered as soon as the next keyframe
//    closes it (or Finish for the last). The concatenated chunks are the
//    file byte for byte, playable by ffplay/VLC from a pipe; the init
//    segment and fragments can be appended to a Media Source Extensions
//    SourceBuffer as they arrive (the mfra trailer is a seek index for file
//    players; an MSE client may skip kTrailer chunks). No faststart here:
//    it needs to seek.
//  * File (CreateFile): a plain MP4 for the offline CLI (ftyp mdat moov, or
//    with Mp4FileLayout::kPlainFaststart ftyp moov mdat so players can start
//    before the end has downloaded), or the fragmented layout above.
//
// Chunks: offsets are contiguous from 0, each chunk is at most
// `max_chunk_bytes` (<= 1 MiB, the gRPC-friendly bound; larger AVIO writes
// are split), and carries its SegmentKind plus a segment_start flag that
// marks where the init segment, each fragment (a moof box) and the trailer
// begin, so a server can cut or resume the stream at fragment boundaries.
// A sink that returns an error aborts the encode with that error.
//
// Picture
//  * RGB24 input, converted with BT.709 coefficients to limited-range
//    yuv420p and tagged BT.709 (primaries, transfer, matrix), which
//    browsers and QuickTime decode. The decoder inverts exactly that.
//  * Odd widths/heights: 4:2:0 needs even sizes. EvenDimensions::kPad (the
//    default) repeats the last column/row (output one pixel larger);
//    kCrop drops it (one pixel smaller). output_width()/output_height() say
//    which size was encoded.
//  * CRF [0, 51] (23 default, 18 about visually lossless), x264 preset
//    (medium default) and optional tune; keyframes every gop_size frames
//    exactly (scene-cut keyframes off), so fragments are regular: 1 s each
//    by default.
//  * Timestamps: frame i has pts i * fps_den / fps_num in a 1/fps time base.
//    Fragmented MP4 has no edit list, so with B-frames (every preset but
//    ultrafast and tune zerolatency) the muxer shifts the stream to start at
//    dts 0 and the first frame is presented at the reorder delay (2 frames
//    with medium); spacing stays exactly 1/fps.
//
// Latency: a fragment leaves when the next keyframe has been encoded, i.e.
// after gop_size frames plus x264's lookahead (rc-lookahead, capped at the
// GOP: 24 frames for medium at GOP 24) plus a few frames of B-frame and
// frame-thread delay. Measured on 2 cores: the first fragment came out after
// 56 frames in (medium, GOP 24), 24 (medium, GOP 8), 25 (tune zerolatency,
// which drops lookahead and B-frames, GOP 24). bench/media/latency_bench.cc
// measures it in time; more x264 threads (more cores) add delay frames.
//
// Determinism: x264 0.164's AVX-512 kernels read uninitialised memory
// (the bit stream changes with heap contents), so they are off unless
// VideoEncoderOptions::x264_avx512; equal frames and options then give
// byte-identical output on a machine, and retried jobs reproduce it.
//
// Errors: options are checked up front (ValidateEncoderOptions:
// INVALID_ARGUMENT naming the field and the rule); every libav failure
// becomes a Status naming the step and libav's message (av_err2str), e.g.
// "avio_open(/x/out.mp4): No such file or directory (libav error -2)"; a
// sink error is returned as the sink gave it; out of memory is
// RESOURCE_EXHAUSTED.
//
// Usage:
//   VideoEncoderOptions options;
//   options.width = 1248; options.height = 704; options.fps_num = 24;
//   LVS_ASSIGN_OR_RETURN(auto encoder, VideoEncoder::CreateStreaming(
//       options, [&](const Chunk& c) { return Send(c.offset, c.bytes); }));
//   for (const auto& frame : frames) {
//     LVS_RETURN_IF_ERROR(encoder->AddFrame(frame));  // H x W x 3 bytes.
//   }
//   LVS_RETURN_IF_ERROR(encoder->Finish());
//
// Thread-safety: a VideoEncoder is not thread-safe; use one encoder per job
// from one thread at a time. The sink runs on the thread that calls Create,
// AddFrame or Finish. Separate encoders are independent (x264 itself runs
// `threads` worker threads inside each).
#ifndef LVS_MODEL_MEDIA_VIDEO_ENCODER_H_
#define LVS_MODEL_MEDIA_VIDEO_ENCODER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace lvs::media {

// Largest chunk a ChunkSink ever receives (also the AVIO buffer size).
inline constexpr int kMaxChunkBytes = 1 << 20;

// How a frame with an odd width or height becomes the even size that
// yuv420p (4:2:0 chroma) needs.
enum class EvenDimensions {
  // Replicates the last column and/or row: the output is one pixel larger
  // in the odd dimension and no input pixel is lost. The default.
  kPad,
  // Drops the last column and/or row: the output is one pixel smaller.
  kCrop,
};

// Encoder settings. ValidateEncoderOptions() states every rule.
struct VideoEncoderOptions {
  // Size of the RGB24 frames passed to AddFrame, in pixels (> 0).
  int width = 0;
  int height = 0;
  // Frame rate as the rational fps_num / fps_den (both > 0), e.g. 24/1 or
  // 24000/1001. Frame i is stamped i * fps_den / fps_num seconds.
  int fps_num = 24;
  int fps_den = 1;
  // x264 constant rate factor in [0, 51]: 23 is the default, 18 about
  // visually lossless, +6 roughly halves the bitrate.
  int crf = 23;
  // x264 preset: ultrafast ... medium (default) ... placebo.
  std::string preset = "medium";
  // Optional x264 tune (film, animation, zerolatency, ...; "" for none).
  // "zerolatency" removes lookahead and B-frames, so a fragment leaves as
  // soon as its last frame is in.
  std::string tune;
  // Fixed keyframe interval in frames (x264 -g, scene-cut keyframes off), so
  // fragments are regular. 0 means one second: fps rounded, at least 1.
  int gop_size = 0;
  // Odd-dimension handling; see EvenDimensions.
  EvenDimensions even_dimensions = EvenDimensions::kPad;
  // libx264 threads; 0 lets x264 choose from the core count.
  int threads = 0;
  // Lets x264 use its AVX-512 kernels. Off by default: in x264 0.164 they
  // read uninitialised memory, so the output (bit rate, picture) then
  // changes with heap contents from run to run; with them off, equal input
  // and options give byte-identical output, which retried jobs rely on.
  bool x264_avx512 = false;
  // Upper bound on each chunk given to the ChunkSink, in [1, kMaxChunkBytes].
  int max_chunk_bytes = kMaxChunkBytes;
};

// Returns InvalidArgument naming the field and the rule when `options` is not
// usable (size, fps, CRF, preset, tune, GOP, threads, chunk size).
absl::Status ValidateEncoderOptions(const VideoEncoderOptions& options);

// What part of the fragmented MP4 a chunk belongs to.
enum class SegmentKind {
  kInit,     // ftyp + moov (no samples).
  kMedia,    // moof + mdat fragments.
  kTrailer,  // mfra (random-access index) written by Finish().
};

// A contiguous range of the output. Chunks arrive in order: the offset of
// each is the sum of the sizes before it, so concatenating them gives the
// file byte for byte.
struct Chunk {
  int64_t offset = 0;
  // Valid only during the sink call; copy what must be kept.
  absl::Span<const uint8_t> bytes;
  SegmentKind kind = SegmentKind::kInit;
  // True for the first chunk of the init segment, of each fragment (it then
  // begins with a moof box) and of the trailer.
  bool segment_start = false;
};

// Receives the streamed output. A non-OK return aborts the encode: the call
// that triggered the write returns that status, and so does every later call.
using ChunkSink = std::function<absl::Status(const Chunk& chunk)>;

// Layout of an MP4 written to a file.
enum class Mp4FileLayout {
  kPlain,           // ftyp, mdat, moov at the end.
  kPlainFaststart,  // ftyp, moov, mdat (a second pass moves the moov up).
  kFragmented,      // The streaming layout, written to a file.
};

// Counters of one encode, updated as it runs.
struct EncodeStats {
  int64_t frames = 0;   // Frames passed to AddFrame.
  int64_t packets = 0;  // Encoded packets handed to the muxer.
  int64_t bytes = 0;    // Output bytes so far (chunks or file writes).
  int64_t chunks = 0;   // Chunks given to the sink (streaming only).
};

// Encodes RGB24 frames to H.264 in MP4. Create, AddFrame per frame, Finish.
// Destroying an encoder without Finish abandons the output (a file is left
// incomplete; a stream simply stops).
class VideoEncoder {
 public:
  // Opens a fragmented-MP4 encoder that streams into `sink`. The init
  // segment is delivered to the sink before this returns.
  static absl::StatusOr<std::unique_ptr<VideoEncoder>> CreateStreaming(
      const VideoEncoderOptions& options, ChunkSink sink);

  // Opens an encoder that writes `path` (created or truncated) in `layout`.
  static absl::StatusOr<std::unique_ptr<VideoEncoder>> CreateFile(
      const VideoEncoderOptions& options, const std::string& path,
      Mp4FileLayout layout = Mp4FileLayout::kPlain);

  ~VideoEncoder();
  VideoEncoder(const VideoEncoder&) = delete;
  VideoEncoder& operator=(const VideoEncoder&) = delete;

  // Encodes one frame: `rgb24` holds height x width x 3 bytes, rows top to
  // bottom, tightly packed. Encoded fragments that complete are written out
  // before this returns. InvalidArgument when the size is wrong,
  // FailedPrecondition after Finish; after a failure (a libav step or the
  // sink) every later call returns that first error.
  absl::Status AddFrame(absl::Span<const uint8_t> rgb24);

  // Drains the encoder, writes the last fragment and the trailer, and
  // flushes (and for files closes) the output. Call once.
  absl::Status Finish();

  // The size of the encoded video after even-dimension handling.
  int output_width() const;
  int output_height() const;

  // Counters so far.
  const EncodeStats& stats() const;

 private:
  class Impl;
  explicit VideoEncoder(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace lvs::media

#endif  // LVS_MODEL_MEDIA_VIDEO_ENCODER_H_
