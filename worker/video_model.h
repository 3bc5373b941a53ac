// The torch-free seam between the worker process and a video generator.
//
// The worker's model-owner thread calls `VideoModel::Generate()` for one job
// at a time; the model reports progress and hands out RGB frames through a
// `ProgressSink` and polls a `CancelToken` at least once per denoising step.
// `FakeVideoModel` (worker/fake_model.h) implements it with synthetic frames
// for the serving tests; the real Lumina-Video pipeline adapter implements it
// in worker/lumina_model.h and is the only part of the worker that links
// LibTorch.
//
// Thread-safety: a `VideoModel` is used by one thread at a time (the worker's
// model-owner thread). `CancelToken` may be set from any thread.
#ifndef LVS_WORKER_VIDEO_MODEL_H_
#define LVS_WORKER_VIDEO_MODEL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/sampler/sample_config.h"

namespace lvs::worker {

// One generation job as the worker received it from the server. Field
// validation against the server's admission limits happened before leasing;
// the model still rejects what it cannot honour with INVALID_ARGUMENT naming
// the field.
struct GenerateRequest {
  std::string job_id;
  std::string prompt;
  std::string negative_prompt;
  int width = 0;
  int height = 0;
  int frames = 0;
  int fps = 0;
  std::string sample_config;  // Named sampling configuration; may be empty.
  // Grid points N of the Euler sampler (0: the model default; the wire's
  // `steps`). A job runs N - 1 denoising steps, one per grid interval (one
  // model call each).
  int grid_points = 0;
  uint64_t seed = 0;
  std::string precision;  // "bf16", "fp32" or empty for the model default.
  // An explicit sampling configuration; when set it replaces `sample_config`.
  std::optional<sampler::SampleConfig> sample;
  // Step-caching threshold of the request (0: compute every forward).
  float cache_threshold = 0;
};

// What the model will actually produce for a request: the frame count can
// differ from the requested one (latent frames = frames / 4).
struct VideoPlan {
  int width = 0;
  int height = 0;
  int frames = 0;
  int fps = 0;
  int denoise_steps = 0;  // Grid intervals: grid points - 1.
  uint64_t seed = 0;
};

// One finished denoising step (one grid interval of the sampler). Every
// model reports `denoise_steps` = VideoPlan::denoise_steps = grid points - 1
// and a 0-based `index`, as the wire's Step event; only a display adds 1.
struct StepEvent {
  int index = 0;          // 0-based index of the finished step.
  int denoise_steps = 0;  // Number of denoising steps of the job.
  double t = 0;           // Flow time of the step.
  std::string patch;      // Patch size of the step, "FxP" (e.g. "1x2").
  bool guided = false;    // Whether classifier-free guidance ran.
};

// A run of consecutive RGB frames, 8-bit, interleaved, rows top to bottom:
// `rgb.size() == count * height * width * 3`.
struct FrameBatch {
  int first_frame = 0;
  int count = 0;
  int width = 0;
  int height = 0;
  absl::Span<const uint8_t> rgb;
};

// Receives the progress of one `Generate()` call, in this order: `OnPlan`
// once, `OnTextEncoded` once, `OnStep` per step, then `OnFrames` and
// `OnDecoded` per decoded chunk.
class ProgressSink {
 public:
  virtual ~ProgressSink() = default;

  // Announces the output geometry before any work starts.
  virtual void OnPlan(const VideoPlan& plan) = 0;

  // Reports that the prompts (`tokens` tokens in all) are encoded, after
  // `seconds` of work.
  virtual void OnTextEncoded(int tokens, double seconds) = 0;

  // Reports one finished denoising step.
  virtual void OnStep(const StepEvent& step) = 0;

  // Hands out decoded frames in order. A non-OK status (for example an
  // encoder failure) aborts the generation with that status.
  virtual absl::Status OnFrames(const FrameBatch& frames) = 0;

  // Reports that `frames_done` of `frames_total` frames are decoded.
  virtual void OnDecoded(int frames_done, int frames_total) = 0;

  // Reports the DiT forwards of the job (one per CFG branch and step):
  // computed in full and reused from the step cache. Models without a DiT
  // never call it.
  virtual void OnDiTForwards(int64_t computed, int64_t cached) {
    (void)computed;
    (void)cached;
  }
};

// A flag set by the worker when the server cancels the running job. The
// model polls it at least once per denoising step and returns CANCELLED.
class CancelToken {
 public:
  // Requests cancellation; safe from any thread.
  void Cancel() { cancelled_.store(true, std::memory_order_release); }

  // Returns whether cancellation was requested.
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> cancelled_{false};
};

// The rules a named sample config adds to the model's (see ModelInfo).
struct SampleConfigRule {
  std::string name;
  int latent_frames_multiple = 1;  // Its largest frame patch.
  int64_t max_pixels = 0;          // Its pixel budget (0: the model's).
};

// What a worker advertises to the server when it registers: the server admits
// only requests these limits accept and fills absent fields with the defaults
// (lumina.video.v1.ModelLimits).
struct ModelInfo {
  std::vector<std::string> model_ids;  // The first is the id, then aliases.
  std::string device_name;  // For example "cpu" or "NVIDIA H100 80GB".
  uint64_t device_memory_bytes = 0;
  int max_width = 0;
  int max_height = 0;
  int max_frames = 0;
  int size_multiple = 32;
  int64_t max_pixels = 0;  // width * height bound (0: none).
  int frames_per_latent = 1;
  int min_latent_frames = 1;
  int latent_frames_multiple = 1;
  int max_fps = 0;
  int max_steps = 0;
  std::vector<SampleConfigRule> sample_configs;  // Empty: any name.
  int default_width = 0;
  int default_height = 0;
  int default_frames = 0;
  int default_fps = 0;
  int default_steps = 0;
  std::string default_sample_config;
};

// A resident video generator (weights loaded once, reused across jobs).
class VideoModel {
 public:
  virtual ~VideoModel() = default;

  // Describes the model for registration with the server.
  virtual ModelInfo Info() const = 0;

  // Returns the bytes of device memory in use now (0 when unknown).
  virtual uint64_t DeviceMemoryInUse() const = 0;

  // Loads the weights of `checkpoint` (a directory in the trainer's layout;
  // the EMA variant when `use_ema`) and, when `vae` is not empty, the VAE
  // of that directory, in place of the current ones and returns the new
  // model version. On error the current weights stay in use.
  virtual absl::StatusOr<std::string> Reload(const std::string& checkpoint,
                                             bool use_ema,
                                             const std::string& vae) = 0;

  // Returns the version of the weights in use (a checkpoint path or "").
  virtual std::string Version() const = 0;

  // Runs one job to completion, reporting through `sink`. Returns CANCELLED
  // within one step of `cancel` being set, INVALID_ARGUMENT naming the field
  // for a request the model cannot run, and other errors as they happen.
  virtual absl::Status Generate(const GenerateRequest& request,
                                ProgressSink& sink,
                                const CancelToken& cancel) = 0;
};

}  // namespace lvs::worker

#endif  // LVS_WORKER_VIDEO_MODEL_H_
