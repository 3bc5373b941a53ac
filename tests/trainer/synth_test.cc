// lvs-synth: clips are a pure function of (seed, split, index), the
// held-out combinations never reach the train split, frames show the named
// colour moving the named way over the named background, and clips come
// back from their MP4 with the requested size, length and rate.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "model/media/video_decoder.h"
#include "tools/lvs_synth/synth.h"

namespace lvs::synth {
namespace {

struct Blob {
  double x = 0, y = 0, area = 0;
  double rgb[3] = {0, 0, 0};
};

// Centroid, area and mean colour of pixels far from the background.
Blob FindBlob(const std::vector<uint8_t>& rgb, int w, int h,
              const std::array<uint8_t, 3>& bg) {
  Blob b;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const uint8_t* p = &rgb[(y * w + x) * 3];
      const int d = std::abs(p[0] - bg[0]) + std::abs(p[1] - bg[1]) +
                    std::abs(p[2] - bg[2]);
      if (d < 90) continue;
      b.x += x;
      b.y += y;
      b.area += 1;
      for (int c = 0; c < 3; ++c) b.rgb[c] += p[c];
    }
  }
  if (b.area > 0) {
    b.x /= b.area;
    b.y /= b.area;
    for (double& c : b.rgb) c /= b.area;
  }
  return b;
}

TEST(SynthTest, ClipsAreDeterministicForTheirSeed) {
  SynthOptions o;
  for (int i = 0; i < 8; ++i) {
    const ClipSpec a = SampleClip(7, "train", i, o);
    const ClipSpec b = SampleClip(7, "train", i, o);
    EXPECT_EQ(a.caption, b.caption);
    EXPECT_EQ(RenderFrame(a, 5, o), RenderFrame(b, 5, o));
  }
  int differ = 0;
  for (int i = 0; i < 8; ++i) {
    differ += SampleClip(7, "train", i, o).caption !=
              SampleClip(8, "train", i, o).caption;
  }
  EXPECT_GT(differ, 4);
}

TEST(SynthTest, HeldOutCombinationsNeverReachTraining) {
  int held = 0;
  std::set<int> colours, shapes, directions;  // Seen in training combos.
  for (int c = 0; c < 6; ++c) {
    for (int s = 0; s < 3; ++s) {
      for (int d = 0; d < 4; ++d) {
        if (IsHeldOutCombo(c, s, d)) {
          ++held;
        } else {
          colours.insert(c), shapes.insert(s), directions.insert(d);
        }
      }
    }
  }
  EXPECT_EQ(held, 12);
  EXPECT_EQ(colours.size(), 6u);
  EXPECT_EQ(shapes.size(), 3u);
  EXPECT_EQ(directions.size(), 4u);
  SynthOptions o;
  std::set<std::string> backgrounds;
  for (int i = 0; i < 200; ++i) {
    const ClipSpec t = SampleClip(3, "train", i, o);
    EXPECT_FALSE(IsHeldOutCombo(t.colour, t.shape, t.direction)) << i;
    backgrounds.insert(Backgrounds()[t.background].name);
    const ClipSpec h = SampleClip(3, "heldout", i, o);
    EXPECT_TRUE(IsHeldOutCombo(h.colour, h.shape, h.direction)) << i;
  }
  EXPECT_EQ(backgrounds.size(), Backgrounds().size());
}

TEST(SynthTest, CaptionsNameTheAttributesInSeveralPhrasings) {
  std::set<std::string> captions;
  for (uint64_t v = 0; v < 12; ++v) {
    const std::string c = Caption(3, 1, 1, 1, v);
    EXPECT_TRUE(absl::StrContains(c, "yellow")) << c;
    EXPECT_TRUE(absl::StrContains(c, "right")) << c;
    EXPECT_TRUE(absl::StrContains(c, "dark blue")) << c;
    captions.insert(c);
  }
  EXPECT_GE(captions.size(), 8u);
}

TEST(SynthTest, FramesShowTheColourMovingTheNamedWay) {
  SynthOptions o;
  for (int i = 0; i < 40; ++i) {
    const ClipSpec clip = SampleClip(11, i % 2 ? "heldout" : "train", i, o);
    const auto& bg = Backgrounds()[clip.background].rgb;
    const Blob first = FindBlob(RenderFrame(clip, 0, o), o.width, o.height, bg);
    const Blob last =
        FindBlob(RenderFrame(clip, o.frames - 1, o), o.width, o.height, bg);
    ASSERT_GT(first.area, 100) << clip.caption;
    ASSERT_GT(last.area, 100) << clip.caption;
    // The object stays whole inside the frame: same area within AA noise.
    EXPECT_NEAR(last.area / first.area, 1.0, 0.1) << clip.caption;
    const double dx = last.x - first.x, dy = last.y - first.y;
    const std::string& dir = Directions()[clip.direction];
    const double along = dir == "left"    ? -dx
                         : dir == "right" ? dx
                         : dir == "up"    ? -dy
                                          : dy;
    EXPECT_GT(along, 25) << clip.caption;
    EXPECT_LT(std::abs(dir == "left" || dir == "right" ? dy : dx), 2)
        << clip.caption;
    const auto& c = ObjectColours()[clip.colour].rgb;
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(first.rgb[k], c[k], 25);
  }
}

TEST(SynthTest, StartPositionsAndSpeedsVary) {
  SynthOptions o;
  double min_speed = 1e9, max_speed = 0;
  double min_along = 1e9, max_along = -1e9, min_across = 1e9, max_across = -1e9;
  for (int i = 0; i < 200; ++i) {
    const ClipSpec c = SampleClip(5, "train", i, o);
    const bool horizontal = Directions()[c.direction] == "left" ||
                            Directions()[c.direction] == "right";
    const double along = horizontal ? c.x0 : c.y0;
    const double across = horizontal ? c.y0 : c.x0;
    // Distance travelled toward the far side, whatever the sign.
    const double from_start = (Directions()[c.direction] == "left" ||
                               Directions()[c.direction] == "up")
                                  ? o.width - along
                                  : along;
    min_along = std::min(min_along, from_start);
    max_along = std::max(max_along, from_start);
    min_across = std::min(min_across, across);
    max_across = std::max(max_across, across);
    min_speed = std::min(min_speed, c.speed);
    max_speed = std::max(max_speed, c.speed);
    // Across the motion the object starts in the middle quarter.
    EXPECT_GE(across, 0.375 * o.width - 1e-9) << c.caption;
    EXPECT_LE(across, 0.625 * o.width + 1e-9) << c.caption;
  }
  EXPECT_GT(max_along - min_along, 15);
  EXPECT_GT(max_across - min_across, 25);
  EXPECT_GT(max_speed / min_speed, 1.4);
}

TEST(SynthTest, ClipFilesDecodeWithTheRequestedGeometry) {
  const std::string dir =
      absl::StrCat(::testing::TempDir(), "/synth-", getpid());
  std::filesystem::create_directories(dir);
  SynthOptions o;
  const ClipSpec clip = SampleClip(1, "train", 0, o);
  const std::string path = dir + "/c.mp4";
  ASSERT_TRUE(WriteClip(clip, o, path).ok());
  auto dec = media::VideoDecoder::OpenFile(path);
  ASSERT_TRUE(dec.ok()) << dec.status();
  EXPECT_EQ((*dec)->info().width, 128);
  EXPECT_EQ((*dec)->info().height, 128);
  EXPECT_EQ((*dec)->info().fps_num / (*dec)->info().fps_den, 8);
  auto frames = (*dec)->DecodeAll();
  ASSERT_TRUE(frames.ok());
  ASSERT_EQ(frames->size(), 17u);
  // Lossy but close: mean abs error against the rendering.
  const std::vector<uint8_t> ref = RenderFrame(clip, 8, o);
  double err = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    err += std::abs(int((*frames)[8].rgb[i]) - int(ref[i]));
  }
  EXPECT_LT(err / ref.size(), 4.0);
  const nlohmann::json rec = ClipRecord(clip, "c.mp4", "train");
  EXPECT_EQ(rec["prompt"], clip.caption);
  EXPECT_EQ(rec["path"], "c.mp4");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lvs::synth
