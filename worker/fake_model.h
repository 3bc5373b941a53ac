// A deterministic stand-in for the video model, used by the serving tests and
// benchmarks: it sleeps a configurable time per "denoising step", can fail at
// a chosen step, runs `steps - 1` denoising steps for a request of `steps`
// grid points as the real sampler does, and produces synthetic frames that
// depend only on the seed, the frame index and the geometry (moving colour
// gradients that encode well).
//
// Thread-safety: like every `VideoModel`, used by one thread at a time.
#ifndef LVS_WORKER_FAKE_MODEL_H_
#define LVS_WORKER_FAKE_MODEL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "worker/video_model.h"

namespace lvs::worker {

// Knobs of the fake model.
struct FakeVideoModelOptions {
  // Time each denoising step takes.
  absl::Duration step_time = absl::Milliseconds(20);
  // Time each decoded chunk of `chunk_frames` frames takes (the VAE's share),
  // so the fragments of a long video leave over time as with the real model.
  absl::Duration decode_time = absl::ZeroDuration();
  // 1-based step at which Generate() fails with INTERNAL; 0 never fails.
  int fail_at_step = 0;
  // Defaults for request fields left at 0 (`default_steps` in grid points).
  int default_steps = 8;
  int default_frames = 16;
  int default_width = 256;
  int default_height = 160;
  int default_fps = 16;
  // Frames handed out per decoded chunk.
  int chunk_frames = 8;
  // Limits advertised and enforced.
  int max_width = 1920;
  int max_height = 1088;
  int max_frames = 256;
};

// The fake `VideoModel`; see the file comment.
class FakeVideoModel : public VideoModel {
 public:
  // Creates a fake model with `options`.
  explicit FakeVideoModel(FakeVideoModelOptions options);

  ModelInfo Info() const override;
  uint64_t DeviceMemoryInUse() const override { return 0; }
  // Checks that `checkpoint` is a readable directory and records it as the
  // version (the fake model has no weights to load).
  absl::StatusOr<std::string> Reload(const std::string& checkpoint,
                                     bool use_ema,
                                     const std::string& vae) override;
  std::string Version() const override { return version_; }
  absl::Status Generate(const GenerateRequest& request, ProgressSink& sink,
                        const CancelToken& cancel) override;

  // Writes frame `index` of a `width` x `height` video for `seed` into `rgb`
  // (HWC, 3 bytes per pixel). Tests use it to predict the decoded output.
  static void RenderFrame(uint64_t seed, int index, int width, int height,
                          uint8_t* rgb);

 private:
  // Fills in defaults and checks the geometry against the limits.
  absl::Status MakePlan(const GenerateRequest& request, VideoPlan* plan) const;

  FakeVideoModelOptions options_;
  std::string version_ = "fake";
};

}  // namespace lvs::worker

#endif  // LVS_WORKER_FAKE_MODEL_H_
