#include "tools/lvs_synth/synth.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "model/media/video_encoder.h"

namespace lvs::synth {
namespace {

constexpr int kShift = 4;  // OpenCV sub-pixel bits for drawing.

// Uniform double in [lo, hi) from 53 bits of `rng` (libstdc++-independent).
double Uniform(std::mt19937_64& rng, double lo, double hi) {
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  return lo + (hi - lo) * u;
}

int UniformInt(std::mt19937_64& rng, int n) {
  return static_cast<int>(rng() % static_cast<uint64_t>(n));
}

uint64_t Mix(uint64_t seed, const std::string& split, int64_t index) {
  uint64_t h = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  for (char c : split) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001B3ull;
  return h ^ (static_cast<uint64_t>(index) * 0xBF58476D1CE4E5B9ull);
}

// "a" or "an" before `word`.
std::string A(const std::string& word) {
  return std::string(word.find_first_of("aeiou") == 0 ? "an " : "a ") + word;
}

cv::Point Fixed(double x, double y) {
  return cv::Point(static_cast<int>(std::lround(x * (1 << kShift))),
                   static_cast<int>(std::lround(y * (1 << kShift))));
}

}  // namespace

const std::vector<NamedColour>& ObjectColours() {
  static const std::vector<NamedColour> kColours = {
      {"red", {220, 40, 40}},     {"green", {40, 190, 60}},
      {"blue", {50, 100, 240}},   {"yellow", {240, 220, 40}},
      {"purple", {160, 60, 210}}, {"orange", {250, 140, 20}},
  };
  return kColours;
}

const std::vector<NamedColour>& Backgrounds() {
  static const std::vector<NamedColour> kBackgrounds = {
      {"black", {10, 10, 10}},
      {"dark blue", {15, 25, 80}},
      {"gray", {120, 120, 120}},
  };
  return kBackgrounds;
}

const std::vector<std::string>& Shapes() {
  static const std::vector<std::string> kShapes = {"circle", "square",
                                                   "triangle"};
  return kShapes;
}

const std::vector<std::string>& Directions() {
  static const std::vector<std::string> kDirections = {"left", "right", "up",
                                                       "down"};
  return kDirections;
}

bool IsHeldOutCombo(int colour, int shape, int direction) {
  return (colour + 2 * shape + 3 * direction) % 6 == 1;
}

std::string Caption(int colour, int shape, int direction, int background,
                    uint64_t variant) {
  static const std::vector<std::vector<std::string>> kShapeWords = {
      {"circle", "ball", "disc"}, {"square", "box", "block"}, {"triangle"}};
  static const std::vector<std::string> kToward = {
      "to the left", "to the right", "upward", "downward"};
  const std::string c = ObjectColours()[colour].name;
  const std::string d = Directions()[direction];
  const std::string bg = Backgrounds()[background].name;
  const auto& words = kShapeWords[shape];
  const std::string s = words[(variant / 4) % words.size()];
  switch (variant % 4) {
    case 0:
      return absl::StrCat(A(c), " ", s, " moves ", kToward[direction],
                          " across a ", bg, " background");
    case 1:
      return absl::StrCat("on a ", bg, " background, ", A(c), " ", s,
                          " slides ", d);
    case 2:
      return absl::StrCat(A(c), " ", s, " moving ", d, " over a ", bg,
                          " background");
    default:
      return absl::StrCat("a ", bg, " background with ", A(c), " ", s,
                          " drifting ", kToward[direction]);
  }
}

ClipSpec SampleClip(uint64_t seed, const std::string& split, int64_t index,
                    const SynthOptions& options) {
  std::mt19937_64 rng(Mix(seed, split, index));
  const bool heldout = split == "heldout";
  ClipSpec clip;
  do {
    clip.colour = UniformInt(rng, ObjectColours().size());
    clip.shape = UniformInt(rng, Shapes().size());
    clip.direction = UniformInt(rng, Directions().size());
  } while (IsHeldOutCombo(clip.colour, clip.shape, clip.direction) != heldout);
  clip.background = UniformInt(rng, Backgrounds().size());
  const double short_side = std::min(options.width, options.height);
  clip.size = Uniform(rng, 0.17, 0.21) * short_side;
  clip.speed = Uniform(rng, 0.018, 0.032) * short_side;
  const double travel = clip.speed * (options.frames - 1);
  const double margin = clip.size + 2;
  const bool horizontal = clip.direction < 2;
  const double along = horizontal ? options.width : options.height;
  const double across = horizontal ? options.height : options.width;
  const double lo = margin, hi = std::max(margin, along - margin - travel);
  double a = Uniform(rng, lo, hi);
  // Moving towards -axis: start on the far side.
  if (clip.direction == 0 || clip.direction == 2) a = along - a;
  // Across the motion: within the middle quarter of the frame.
  const double b = Uniform(rng, std::max(margin, across * 0.375),
                           std::min(across - margin, across * 0.625));
  clip.x0 = horizontal ? a : b;
  clip.y0 = horizontal ? b : a;
  clip.caption = Caption(clip.colour, clip.shape, clip.direction,
                         clip.background, rng() % 12);
  return clip;
}

std::vector<uint8_t> RenderFrame(const ClipSpec& clip, int t,
                                 const SynthOptions& options) {
  const auto& bg = Backgrounds()[clip.background].rgb;
  cv::Mat frame(options.height, options.width, CV_8UC3,
                cv::Scalar(bg[0], bg[1], bg[2]));
  static const double kDx[] = {-1, 1, 0, 0}, kDy[] = {0, 0, -1, 1};
  const double x = clip.x0 + kDx[clip.direction] * clip.speed * t;
  const double y = clip.y0 + kDy[clip.direction] * clip.speed * t;
  const auto& c = ObjectColours()[clip.colour].rgb;
  const cv::Scalar colour(c[0], c[1], c[2]);
  const double r = clip.size;
  if (clip.shape == 0) {
    cv::circle(frame, Fixed(x, y),
               static_cast<int>(std::lround(r * (1 << kShift))), colour,
               cv::FILLED, cv::LINE_AA, kShift);
  } else {
    std::vector<cv::Point> poly;
    if (clip.shape == 1) {
      const double h = r * 0.9;
      poly = {Fixed(x - h, y - h), Fixed(x + h, y - h), Fixed(x + h, y + h),
              Fixed(x - h, y + h)};
    } else {
      poly = {Fixed(x, y - r), Fixed(x + r * 0.95, y + r * 0.75),
              Fixed(x - r * 0.95, y + r * 0.75)};
    }
    cv::fillConvexPoly(frame, poly, colour, cv::LINE_AA, kShift);
  }
  return std::vector<uint8_t>(frame.data, frame.data + frame.total() * 3);
}

absl::Status WriteClip(const ClipSpec& clip, const SynthOptions& options,
                       const std::string& path) {
  media::VideoEncoderOptions enc;
  enc.width = options.width;
  enc.height = options.height;
  enc.fps_num = options.fps;
  enc.crf = 12;
  enc.threads = 1;  // One thread: the bitstream is reproducible.
  absl::StatusOr<std::unique_ptr<media::VideoEncoder>> encoder =
      media::VideoEncoder::CreateFile(enc, path);
  if (!encoder.ok()) return encoder.status();
  for (int t = 0; t < options.frames; ++t) {
    const std::vector<uint8_t> rgb = RenderFrame(clip, t, options);
    absl::Status s = (*encoder)->AddFrame(rgb);
    if (!s.ok()) return s;
  }
  return (*encoder)->Finish();
}

nlohmann::json ClipRecord(const ClipSpec& clip, const std::string& path,
                          const std::string& split) {
  return {{"path", path},
          {"prompt", clip.caption},
          {"colour", ObjectColours()[clip.colour].name},
          {"shape", Shapes()[clip.shape]},
          {"direction", Directions()[clip.direction]},
          {"background", Backgrounds()[clip.background].name},
          {"split", split}};
}

}  // namespace lvs::synth
