// Video reader for tests and data tools: opens a file or an in-memory buffer
// with libavformat, reports the first video stream's properties and decodes
// its frames to RGB24 with libavcodec and libswscale (torch-free).
//
// Colour: frames are converted with the coefficients the stream declares
// (BT.709, BT.601, ...; BT.601 when unspecified) and its range (limited when
// unspecified) to full-range RGB24, so what VideoEncoder wrote comes back
// with the inverse of its conversion.
//
// Thread-safety: a VideoDecoder is not thread-safe; use one per thread.
// Separate decoders are independent.
#ifndef LVS_MODEL_MEDIA_VIDEO_DECODER_H_
#define LVS_MODEL_MEDIA_VIDEO_DECODER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lvs::media {

// Properties of the video stream.
struct VideoStreamInfo {
  std::string container;  // libavformat's name, e.g. "mov,mp4,m4a,3gp,3g2,mj2".
  std::string codec;      // libavcodec's name, e.g. "h264".
  std::string pixel_format;  // e.g. "yuv420p".
  int width = 0;
  int height = 0;
  // Frame rate as a rational (libavformat's best guess; 0/1 if unknown).
  int fps_num = 0;
  int fps_den = 1;
  // Number of frames: the container's count when it declares one, otherwise
  // (fragmented MP4, for instance) the number of the stream's packets.
  int64_t frames = 0;
  // Stream duration in seconds (0 if unknown).
  double duration_seconds = 0;
};

// One decoded frame.
struct RgbFrame {
  int width = 0;
  int height = 0;
  // Presentation time in seconds (from the stream's time base).
  double time_seconds = 0;
  // height x width x 3 bytes, rows top to bottom, tightly packed.
  std::vector<uint8_t> rgb;
};

// Decodes the first video stream of a container.
class VideoDecoder {
 public:
  // Opens `path`. NotFound when the file is missing; errors name the file.
  static absl::StatusOr<std::unique_ptr<VideoDecoder>> OpenFile(
      const std::string& path);

  // Opens a container held in memory; `label` names it in errors.
  static absl::StatusOr<std::unique_ptr<VideoDecoder>> OpenBuffer(
      std::vector<uint8_t> bytes, std::string label = "<memory>");

  ~VideoDecoder();
  VideoDecoder(const VideoDecoder&) = delete;
  VideoDecoder& operator=(const VideoDecoder&) = delete;

  // The stream's properties, read when opening.
  const VideoStreamInfo& info() const;

  // Decodes the next frame into `frame`. Returns false at the end of the
  // stream (after the decoder's delayed frames).
  absl::StatusOr<bool> Next(RgbFrame* frame);

  // Decodes every remaining frame (at most `max_frames` when >= 0).
  absl::StatusOr<std::vector<RgbFrame>> DecodeAll(int64_t max_frames = -1);

 private:
  class Impl;
  explicit VideoDecoder(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace lvs::media

#endif  // LVS_MODEL_MEDIA_VIDEO_DECODER_H_
