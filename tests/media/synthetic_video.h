// Synthetic RGB24 frames and image metrics for the media tests and
// benchmarks (torch-free, header-only).
//
// Thread-safety: stateless functions; safe everywhere.
#ifndef LVS_TESTS_MEDIA_SYNTHETIC_VIDEO_H_
#define LVS_TESTS_MEDIA_SYNTHETIC_VIDEO_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace lvs::media::testing {

// Frame `t` of a moving scene, `width` x `height` x 3 bytes (HWC): smooth
// colour waves that drift with t, a white rectangle moving right and a
// dark disc moving down. Smooth areas and sharp edges both appear.
inline std::vector<uint8_t> SyntheticFrame(int width, int height, int t) {
  constexpr double kTwoPi = 6.283185307179586;
  std::vector<uint8_t> rgb(static_cast<size_t>(width) * height * 3);
  const int rect_w = std::max(2, width / 5), rect_h = std::max(2, height / 4);
  const int rect_x = (t * 3) % std::max(1, width - rect_w);
  const int rect_y = height / 6;
  const double disc_r = std::max(2.0, std::min(width, height) / 6.0);
  const double disc_x = width * 0.6;
  const double disc_y = std::fmod(height * 0.3 + t * 2.0, height);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &rgb[(static_cast<size_t>(y) * width + x) * 3];
      const double u = static_cast<double>(x) / width;
      const double v = static_cast<double>(y) / height;
      p[0] =
          static_cast<uint8_t>(128 + 100 * std::sin(kTwoPi * (u + t / 48.0)));
      p[1] =
          static_cast<uint8_t>(128 + 100 * std::sin(kTwoPi * (v - t / 64.0)));
      p[2] = static_cast<uint8_t>(64 + 127 * (u + v) / 2);
      if (x >= rect_x && x < rect_x + rect_w && y >= rect_y &&
          y < rect_y + rect_h) {
        p[0] = p[1] = p[2] = 235;
      }
      const double dx = x - disc_x, dy = y - disc_y;
      if (dx * dx + dy * dy < disc_r * disc_r) {
        p[0] = 30;
        p[1] = 40;
        p[2] = 90;
      }
    }
  }
  return rgb;
}

// PSNR in dB of the top-left `width` x `height` region of two RGB24 images
// with row lengths `a_width` and `b_width` pixels (infinity when equal).
inline double RegionPsnr(const std::vector<uint8_t>& a, int a_width,
                         const std::vector<uint8_t>& b, int b_width, int width,
                         int height) {
  double sum = 0;
  for (int y = 0; y < height; ++y) {
    for (int i = 0; i < width * 3; ++i) {
      const double d =
          static_cast<double>(a[static_cast<size_t>(y) * a_width * 3 + i]) -
          b[static_cast<size_t>(y) * b_width * 3 + i];
      sum += d * d;
    }
  }
  const double mse = sum / (static_cast<double>(width) * height * 3);
  if (mse == 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(255.0 * 255.0 / mse);
}

// PSNR in dB of two RGB24 images of the same `width` x `height`.
inline double Psnr(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b,
                   int width, int height) {
  return RegionPsnr(a, width, b, width, width, height);
}

// One top-level ISO-BMFF box: its four-character type, offset and size.
struct Box {
  std::string type;
  uint64_t offset = 0;
  uint64_t size = 0;
};

// Splits `bytes` into top-level boxes. Stops (returning what it has) at a
// size field that runs past the end, so a caller can compare the covered
// length with the input length.
inline std::vector<Box> TopLevelBoxes(const std::vector<uint8_t>& bytes) {
  std::vector<Box> boxes;
  uint64_t pos = 0;
  auto be = [&](uint64_t at, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | bytes[at + i];
    return v;
  };
  while (pos + 8 <= bytes.size()) {
    uint64_t size = be(pos, 4);
    if (size == 1 && pos + 16 <= bytes.size()) size = be(pos + 8, 8);
    if (size == 0) size = bytes.size() - pos;  // Box runs to the end.
    if (size < 8 || pos + size > bytes.size()) break;
    boxes.push_back(
        {std::string(bytes.begin() + pos + 4, bytes.begin() + pos + 8), pos,
         size});
    pos += size;
  }
  return boxes;
}

}  // namespace lvs::media::testing

#endif  // LVS_TESTS_MEDIA_SYNTHETIC_VIDEO_H_
