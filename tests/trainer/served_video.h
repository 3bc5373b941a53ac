// Helpers of the serving end-to-end tests: decode what a worker streamed,
// and run the same request on an in-process Pipeline, encoded as the
// worker encodes it (x264 lossless), so the two can be compared exactly.
//
// Thread-safety: plain functions.
#ifndef LVS_TESTS_TRAINER_SERVED_VIDEO_H_
#define LVS_TESTS_TRAINER_SERVED_VIDEO_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lumina/video/v1/common.pb.h"
#include "model/pipeline/pipeline.h"

namespace lvs::testing {

// Decodes an MP4 and returns all its RGB frames back to back (empty, with
// a test failure, when it does not decode).
std::vector<uint8_t> DecodeFrames(const std::string& mp4);

// The small request the serving end-to-end tests run: `prompt` at 64x64,
// 12 frames (3 latent frames -> 9 frames) at 8 fps, sample config
// f24F96R960, `grid_points` grid points, seed 7, fp32.
lumina::video::v1::GenerateVideoRequest SmallVideoRequest(
    const std::string& prompt, int grid_points);

// Mean absolute difference of two frame buffers (-1 when sizes differ or
// they are empty).
double MeanAbsDiff(const std::vector<uint8_t>& a,
                   const std::vector<uint8_t>& b);

// Runs `request` (fields as the worker maps them; `sample` unsupported;
// `config`, when set, replaces its sample config) on `pipe`, encodes the
// frames as lvs-worker --x264-preset=ultrafast --x264-crf=0 does and
// returns them decoded.
std::vector<uint8_t> OfflineFrames(
    pipeline::Pipeline& pipe,
    const lumina::video::v1::GenerateVideoRequest& request,
    const std::optional<sampler::SampleConfig>& config = std::nullopt);

}  // namespace lvs::testing

#endif  // LVS_TESTS_TRAINER_SERVED_VIDEO_H_
