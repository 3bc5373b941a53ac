// Synthetic captioned clips (lvs-synth): one simple shape in a named colour
// moving in a named direction over a named plain background, rendered with
// OpenCV, plus a caption from paraphrased templates. Every clip is a pure
// function of (seed, split, index), so a data set is reproducible.
//
// Composition split: the colour x shape x direction combinations for which
// IsHeldOutCombo() is true never appear in the train split; the held-out
// split draws only from them. Every colour, shape and direction still
// appears in training (in other combinations).
//
// Torch-free. Thread-safety: pure functions over constant tables.
#ifndef LVS_TOOLS_LVS_SYNTH_SYNTH_H_
#define LVS_TOOLS_LVS_SYNTH_SYNTH_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace lvs::synth {

// A named RGB colour.
struct NamedColour {
  const char* name;
  std::array<uint8_t, 3> rgb;
};

// The object palette, the backgrounds, shapes and directions.
const std::vector<NamedColour>& ObjectColours();
const std::vector<NamedColour>& Backgrounds();
const std::vector<std::string>& Shapes();      // circle, square, triangle.
const std::vector<std::string>& Directions();  // left, right, up, down.

// True for the combinations kept out of training (12 of 72).
bool IsHeldOutCombo(int colour, int shape, int direction);

// What one clip shows.
struct ClipSpec {
  int colour = 0, shape = 0, direction = 0, background = 0;
  double size = 0;        // Half extent of the shape, pixels.
  double x0 = 0, y0 = 0;  // Centre in the first frame, pixels.
  double speed = 0;       // Pixels per frame along the direction.
  std::string caption;
};

// Clip geometry and length.
struct SynthOptions {
  int width = 128;
  int height = 128;
  int frames = 17;
  int fps = 8;
};

// Returns clip `index` of `split` ("train" or "heldout") for `seed`.
ClipSpec SampleClip(uint64_t seed, const std::string& split, int64_t index,
                    const SynthOptions& options);

// Returns a caption for the given attributes; `variant` picks the template
// and synonyms (any non-negative value).
std::string Caption(int colour, int shape, int direction, int background,
                    uint64_t variant);

// Renders frame `t` of `clip` as RGB24 (height x width x 3).
std::vector<uint8_t> RenderFrame(const ClipSpec& clip, int t,
                                 const SynthOptions& options);

// Writes the clip as an H.264 MP4 at `path`.
absl::Status WriteClip(const ClipSpec& clip, const SynthOptions& options,
                       const std::string& path);

// The item record of a clip (lvs-extract's fields `path` and `prompt`,
// plus the attributes by name and `split`).
nlohmann::json ClipRecord(const ClipSpec& clip, const std::string& path,
                          const std::string& split);

}  // namespace lvs::synth

#endif  // LVS_TOOLS_LVS_SYNTH_SYNTH_H_
