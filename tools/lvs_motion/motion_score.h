// The motion score of Lumina-Video's micro-conditioning, computed with
// OpenCV dense optical flow instead of UniMatch.
//
// Substitution: the reference (tools/unimatch/compute.py) runs UniMatch
// (gmflow-scale2-regrefine6-mixdata) whose weights are not available here.
// Everything around the flow network is kept: frames at 0, 0.5, ..., 4.0 s
// (index round(t * fps), those inside the clip), as float 0..255, transposed
// to landscape when H > W, resized bilinearly with align_corners to 320x576
// (H x W), flow on every consecutive pair, and the score is mean(|flow|)
// over all pairs, both components and all pixels, in pixels at 320x576.
// The flow itself is OpenCV's DIS (medium preset, default) or Farneback on
// the grey frames. Absolute values therefore differ from UniMatch's
// (DIS underestimates large displacements and textureless motion); the
// ranking of clips (still < slow < fast) is what the score is used for.
//
// Torch-free. Thread-safety: pure functions.
#ifndef LVS_TOOLS_LVS_MOTION_MOTION_SCORE_H_
#define LVS_TOOLS_LVS_MOTION_MOTION_SCORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/media/video_decoder.h"

namespace lvs::motion {

// The flow algorithm.
enum class FlowMethod { kDis, kFarneback };

// Sampling and resolution of the score (the reference's values).
struct MotionOptions {
  double interval_seconds = 0.5;
  double until_seconds = 4.0;
  int height = 320;
  int width = 576;
  FlowMethod method = FlowMethod::kDis;
};

// Returns the frame indices sampled from a clip of `frame_count` frames at
// `fps`: round(t * fps) for t = 0, interval, ..., until (deduplicated,
// inside the clip).
std::vector<int64_t> MotionFrameIndices(double fps, int64_t frame_count,
                                        const MotionOptions& options);

// Returns the score of already-sampled frames (at least two, all of one
// size). INVALID_ARGUMENT for fewer frames or mixed sizes.
absl::StatusOr<double> MotionScore(const std::vector<media::RgbFrame>& frames,
                                   const MotionOptions& options);

// Decodes `path`, samples its frames and returns their score.
absl::StatusOr<double> MotionScoreOfFile(const std::string& path,
                                         const MotionOptions& options);

}  // namespace lvs::motion

#endif  // LVS_TOOLS_LVS_MOTION_MOTION_SCORE_H_
