// The Lumina-Video generation pipeline (the reference's generate.py path):
// prompt -> Gemma-2 tokenizer + encoder (hidden_states[-2]) -> flow sampler
// driving the multi-scale DiT with multi-CFG -> latent / 1.15258426 ->
// CogVideoX VAE decode, chunk by chunk -> uint8 RGB frames (golden README
// 4.9, 6, 8.3, 8.4).
//
// A Pipeline loads the three models once and keeps them resident across
// requests (what a worker holds). Per request it:
//  * validates the request (generation_request.h) and announces the plan,
//  * prepends the system prompt to the prompt and to the negative prompt and
//    encodes both in one padded batch of 2,
//  * draws z from the portable seeded noise (sampler/noise.h) in the model
//    dtype, or takes a given z,
//  * runs the sampler, reporting every step and polling the cancellation
//    function before each one,
//  * decodes chunk by chunk and hands each chunk's frames
//    (`clamp((x + 1) / 2, 0, 1) * 255` truncated to uint8, HWC) to the
//    caller as soon as it is decoded, so an encoder can stream them.
// Each stage reports its wall time and peak memory (process RSS high-water
// mark; CUDA allocator peak when on CUDA). The text encoder's activations
// are dropped after encoding; with `release_text_encoder` its weights are
// dropped too (and reloaded by the next request). Torch errors are caught
// at the job boundary: out of memory becomes RESOURCE_EXHAUSTED.
//
// Models live in one precision; a request asking for the other reloads
// them in that precision.
//
// Thread-safety: Generate() calls are serialised by an internal mutex (one
// job at a time); the callbacks run on the calling thread. The cancellation
// function may read state set from any thread.
#ifndef LVS_MODEL_PIPELINE_PIPELINE_H_
#define LVS_MODEL_PIPELINE_PIPELINE_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "model/dit/dit.h"
#include "model/pipeline/generation_request.h"
#include "model/sampler/flow_sampler.h"
#include "model/text_encoder/gemma2_encoder.h"
#include "model/text_encoder/tokenizer.h"
#include "model/vae/vae.h"

namespace lvs::pipeline {

class DeviceGroup;

// The reference's SYSTEM_PROMPT (note the trailing space).
inline constexpr char kSystemPrompt[] =
    "You are an assistant designed to generate high-quality videos with the "
    "highest degree of image-text alignment based on user prompts. "
    "<Prompt Start> ";

// The latent scale the reference divides by before decoding (a constant of
// the pipeline, not read from the VAE config).
inline constexpr double kVaeScaleFactor = vae::kPipelineLatentScale;

// Where the checkpoints are and how the models run.
struct PipelineOptions {
  std::string dit_dir;           // model_args.pth + consolidated.*.
  std::string text_encoder_dir;  // Hugging Face Gemma-2 folder.
  std::string vae_dir;           // diffusers CogVideoX vae/ folder.
  std::string device = "cpu";    // "cpu", "cuda" or "cuda:N".
  // Precision the models are loaded in (kDefault: bf16 on CUDA and on CPUs
  // with AMX-BF16, else fp32; see DefaultsToBf16).
  Precision precision = Precision::kDefault;
  // Prepended to both prompts.
  std::string system_prompt = kSystemPrompt;
  // Drop the text encoder's weights after encoding (frees its memory during
  // sampling and decoding; the next request reloads it).
  bool release_text_encoder = false;
  // Spatial tiling of the VAE decode (bounds its activation memory).
  vae::TilingOptions vae_tiling;
  // Request limits beyond what the checkpoints imply.
  int64_t max_resolution = 960;
  // Devices of a multi-device pipeline ("cuda:0,cuda:1" split); empty or
  // one: `device` only. When set, devices[0] replaces `device`; the DiT runs
  // CFG- and sequence-parallel over them (layout per request) and the tiled
  // VAE decode spreads its tiles over them.
  std::vector<std::string> devices;
};

// The prompts were encoded.
struct TextEncodedEvent {
  int64_t tokens = 0;         // Valid tokens of both rows together.
  int64_t padded_length = 0;  // L of the padded batch.
  bool truncated = false;     // A row was cut to the tokenizer's limit.
  double seconds = 0;
};

// Frames of one decoded chunk, uint8 RGB, rows top to bottom.
struct FramesEvent {
  int64_t first_frame = 0;
  int64_t count = 0;
  int64_t total = 0;  // Frames of the whole video.
  int width = 0;
  int height = 0;
  absl::Span<const uint8_t> rgb;  // count * height * width * 3 bytes.
};

// Time and memory of one stage ("load", "text", "sample", "decode").
struct StageReport {
  std::string name;
  double seconds = 0;
  int64_t peak_rss_bytes = 0;   // Process RSS high-water mark in the stage.
  int64_t cuda_peak_bytes = 0;  // CUDA allocator peak (0 on the CPU).
};

// Progress callbacks; every one may be empty.
struct PipelineCallbacks {
  std::function<void(const GenerationPlan&)> on_plan;
  std::function<void(const TextEncodedEvent&)> on_text_encoded;
  std::function<void(const sampler::StepInfo&)> on_step;
  // A non-OK status aborts the generation with that status.
  std::function<absl::Status(const FramesEvent&)> on_frames;
  std::function<void(const StageReport&)> on_stage;
  // Polled before each step and each decoded chunk; true stops the job with
  // CANCELLED.
  std::function<bool()> cancelled;
};

// Intermediate values for conformance and tests (CPU tensors).
struct GenerationTrace {
  torch::Tensor input_ids;       // [2, L] int64.
  torch::Tensor attention_mask;  // [2, L] int64.
  torch::Tensor cap_feats;       // [2, L, D] float32.
  std::vector<sampler::ModelCall> calls;
  std::vector<torch::Tensor> states;  // Every sampler state, float32.
  torch::Tensor final_latent;         // [1, C, n, h, w] float32.
  torch::Tensor vae_input;            // final_latent / scale, run dtype.
  torch::Tensor decoded;              // [3, T, H, W] float32.
  torch::Tensor frames;               // [T, H, W, 3] uint8.
};

// What one generation did.
struct GenerationResult {
  GenerationPlan plan;
  std::vector<StageReport> stages;
  int64_t frames = 0;  // Frames handed to on_frames.
  double seconds = 0;  // Whole job.
  // DiT forwards (one per CFG branch and step) run and reused from the step
  // cache.
  int64_t dit_forwards_computed = 0;
  int64_t dit_forwards_cached = 0;
};

// The resident pipeline.
class Pipeline {
 public:
  // Loads the tokenizer, text encoder, DiT and VAE. Errors name the
  // directory and what is wrong; a CUDA device without CUDA support is
  // FAILED_PRECONDITION.
  static absl::StatusOr<std::unique_ptr<Pipeline>> Create(
      const PipelineOptions& options);

  // The models of a pipeline built in memory (benchmarks, tests).
  struct Models {
    std::unique_ptr<text_encoder::Tokenizer> tokenizer;
    std::unique_ptr<text_encoder::Gemma2Encoder> encoder;
    dit::MultiScaleNextDiT dit = nullptr;
    std::unique_ptr<vae::CogVideoXVae> vae;
  };

  // Wraps models already built on `options.device` in the dtype of
  // `options.precision`. The checkpoint directories of `options` are only
  // used to reload models (another precision, release_text_encoder), so
  // leave release_text_encoder off and keep to that precision.
  static absl::StatusOr<std::unique_ptr<Pipeline>> FromModels(
      const PipelineOptions& options, Models models);
  ~Pipeline();

  // Replaces the DiT by the checkpoint in `dir` (model_args.pth plus
  // consolidated.00-of-01.safetensors, or with `use_ema` the trainer's
  // consolidated_ema.00-of-01.safetensors). The architecture must take the
  // same latent and caption widths and have the same patch combinations
  // (limits() stays as it is); on error the current DiT stays.
  absl::Status ReloadDiT(const std::string& dir, bool use_ema)
      ABSL_LOCKS_EXCLUDED(mu_);

  // ReloadDiT together with the VAE of `vae_dir` (diffusers layout; empty:
  // the VAE stays), as one change: the new DiT must take the new VAE's
  // latent channels, and the VAE must keep the compression ratios of
  // limits(). On error both current models stay.
  absl::Status Reload(const std::string& dit_dir, bool use_ema,
                      const std::string& vae_dir) ABSL_LOCKS_EXCLUDED(mu_);

  // Validates `request` against the loaded models (no work done).
  absl::StatusOr<GenerationPlan> Plan(const GenerationRequest& request) const;

  // Runs one request. `z` (optional, [1, C, n, h, w]) replaces the seeded
  // noise; `trace` (optional) receives the intermediates.
  absl::StatusOr<GenerationResult> Generate(const GenerationRequest& request,
                                            const PipelineCallbacks& callbacks,
                                            const torch::Tensor& z = {},
                                            GenerationTrace* trace = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The limits requests are validated against.
  const ModelLimits& limits() const { return limits_; }
  // The device the models run on (rank 0).
  torch::Device device() const { return device_; }
  // Every device of the pipeline (rank order).
  const std::vector<torch::Device>& devices() const { return devices_; }
  // Reports of the initial load.
  const StageReport& load_report() const { return load_report_; }
  // Bytes the CUDA allocator holds now (0 on the CPU).
  int64_t DeviceMemoryInUse() const;
  // The options the pipeline was created with.
  const PipelineOptions& options() const { return options_; }

 private:
  Pipeline(PipelineOptions options, torch::Device device);

  // Forms the device group of options_.devices (more than one).
  absl::Status InitDevices() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Fills limits_ from the loaded models; checks they fit together.
  absl::Status InitLimits() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // (Re)loads whatever is missing or in another dtype.
  absl::Status EnsureModels(torch::ScalarType dtype)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<dit::MultiScaleNextDiT> LoadDiTFrom(
      const std::string& dir, bool use_ema, torch::ScalarType dtype) const;
  absl::StatusOr<GenerationResult> Run(const GenerationPlan& plan,
                                       const PipelineCallbacks& callbacks,
                                       const torch::Tensor& z,
                                       GenerationTrace* trace)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::pair<torch::Tensor, torch::Tensor>> EncodeText(
      const GenerationPlan& plan, const PipelineCallbacks& callbacks,
      GenerationTrace* trace) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int64_t> Decode(const GenerationPlan& plan,
                                 const torch::Tensor& latent,
                                 const PipelineCallbacks& callbacks,
                                 GenerationTrace* trace)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const PipelineOptions options_;
  const torch::Device device_;
  ModelLimits limits_;
  StageReport load_report_;

  // Every device, rank order (set before the pipeline is shared).
  std::vector<torch::Device> devices_;

  absl::Mutex mu_;
  torch::ScalarType dtype_ ABSL_GUARDED_BY(mu_) = torch::kFloat32;
  std::unique_ptr<text_encoder::Tokenizer> tokenizer_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<text_encoder::Gemma2Encoder> encoder_ ABSL_GUARDED_BY(mu_);
  dit::MultiScaleNextDiT dit_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::string dit_dir_ ABSL_GUARDED_BY(mu_);  // Where dit_ came from.
  bool dit_use_ema_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<vae::CogVideoXVae> vae_ ABSL_GUARDED_BY(mu_);
  std::string vae_dir_ ABSL_GUARDED_BY(mu_);  // Where vae_ came from.
  // Ranks 1.. of a multi-device pipeline (null with one device).
  std::unique_ptr<DeviceGroup> group_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lvs::pipeline

#endif  // LVS_MODEL_PIPELINE_PIPELINE_H_
