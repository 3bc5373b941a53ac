// Synthetic clips for the data-tool tests: moving (or still) coloured
// shapes on a gradient background, as RGB24 frames and as H.264 MP4 files
// written with lvs_media.
//
// Thread-safety: test-only helpers; pure functions.
#ifndef LVS_TESTS_TRAINER_SYNTHETIC_CLIPS_H_
#define LVS_TESTS_TRAINER_SYNTHETIC_CLIPS_H_

#include <cstdint>
#include <string>
#include <vector>

#include <zlib.h>

#include <fstream>

#include "absl/status/status.h"
#include "model/media/video_decoder.h"
#include "model/media/video_encoder.h"

namespace lvs::trainer::testing {

// Frame `i` of a clip: a red square and a blue disc over a gradient, moving
// `speed` pixels per frame (0: still).
inline media::RgbFrame ShapesFrame(int width, int height, int i, double speed) {
  media::RgbFrame f;
  f.width = width;
  f.height = height;
  f.rgb.resize(static_cast<size_t>(width) * height * 3);
  const double sx = 8 + speed * i, dy = 10 + 0.5 * speed * i;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &f.rgb[(static_cast<size_t>(y) * width + x) * 3];
      p[0] = static_cast<uint8_t>(40 + 120 * x / width);
      p[1] = static_cast<uint8_t>(60 + 100 * y / height);
      p[2] = 90;
      const double rx = x - sx, ry = y - height / 3.0;
      if (rx >= 0 && rx < width / 5.0 && ry >= 0 && ry < height / 5.0) {
        p[0] = 230, p[1] = 30, p[2] = 30;
      }
      const double cx = x - (width - 20 - speed * i), cy = y - dy;
      if (cx * cx + cy * cy < (height / 8.0) * (height / 8.0)) {
        p[0] = 20, p[1] = 40, p[2] = 220;
      }
    }
  }
  return f;
}

// Writes an MP4 of `frames` shape frames at `fps` to `path`.
inline absl::Status WriteShapesClip(const std::string& path, int width,
                                    int height, int frames, int fps,
                                    double speed) {
  media::VideoEncoderOptions o;
  o.width = width;
  o.height = height;
  o.fps_num = fps;
  o.crf = 12;
  o.preset = "ultrafast";
  o.threads = 1;
  absl::StatusOr<std::unique_ptr<media::VideoEncoder>> enc =
      media::VideoEncoder::CreateFile(o, path);
  if (!enc.ok()) return enc.status();
  for (int i = 0; i < frames; ++i) {
    const media::RgbFrame f = ShapesFrame(width, height, i, speed);
    if (absl::Status s = (*enc)->AddFrame(f.rgb); !s.ok()) return s;
  }
  return (*enc)->Finish();
}

// Writes an RGB frame as an 8-bit PNG (stored rows, zlib-compressed).
inline void WritePng(const std::string& path, const media::RgbFrame& f) {
  auto be32 = [](std::string* o, uint32_t v) {
    for (int i = 3; i >= 0; --i) o->push_back(static_cast<char>(v >> (8 * i)));
  };
  auto chunk = [&](std::string* o, const char* type, const std::string& data) {
    be32(o, static_cast<uint32_t>(data.size()));
    const std::string body = std::string(type, 4) + data;
    o->append(body);
    be32(o, static_cast<uint32_t>(crc32(
                0, reinterpret_cast<const Bytef*>(body.data()), body.size())));
  };
  std::string ihdr;
  be32(&ihdr, f.width);
  be32(&ihdr, f.height);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB.
  std::string raw;
  for (int y = 0; y < f.height; ++y) {
    raw.push_back(0);  // Filter: none.
    raw.append(reinterpret_cast<const char*>(&f.rgb[size_t(y) * f.width * 3]),
               size_t(f.width) * 3);
  }
  uLongf size = compressBound(raw.size());
  std::string z(size, '\0');
  compress(reinterpret_cast<Bytef*>(z.data()), &size,
           reinterpret_cast<const Bytef*>(raw.data()), raw.size());
  z.resize(size);
  std::string png = "\x89PNG\r\n\x1a\n";
  chunk(&png, "IHDR", ihdr);
  chunk(&png, "IDAT", z);
  chunk(&png, "IEND", "");
  std::ofstream(path, std::ios::binary) << png;
}

}  // namespace lvs::trainer::testing

#endif  // LVS_TESTS_TRAINER_SYNTHETIC_CLIPS_H_
