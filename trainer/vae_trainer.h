// VAE training from scratch: the CogVideoX 3D causal VAE of model/vae (any
// widths) trained on video clips listed in item lists (JSON/JSONL with
// `path`, as lvs-synth writes): random spatial crops of whole clips,
// reconstruction loss (L1 + MSE) plus a small KL term, AdamW, gradient
// clipping, an EMA of the weights. The decoder runs over the same latent
// chunks as CogVideoXVae::Decode (causal caches carried), so training sees
// the inference computation. Checkpoints are the diffusers layout the
// pipeline loads (config.json + diffusion_pytorch_model.safetensors, EMA
// weights): the measured latent scale (1 / std of the training latents'
// means) is folded into the weights (FoldLatentScale) so that the pipeline's
// fixed vae::kPipelineLatentScale, written as `scaling_factor`, gives
// unit-std latents.
//
// Spec (JSON, `model_type: "vae"`, or a TrainingJobSpec with
// MODEL_TYPE_VAE leased from the server; see VaeTrainSpec for the fields and
// defaults). Resumption is not supported: a run starts from `init_from`
// (a diffusers VAE directory) or fresh from `vae_config`.
//
// Determinism: crops and noise come from generators seeded by (seed, step);
// a run repeats bit for bit on one machine and build.
//
// Thread-safety: a VaeTrainer is used by one thread.
#ifndef LVS_TRAINER_VAE_TRAINER_H_
#define LVS_TRAINER_VAE_TRAINER_H_

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/vae/vae.h"
#include "nlohmann/json.hpp"
#include "trainer/trainer.h"

namespace lvs::trainer {

// Returns parameter `name` of a VAE with the latent rescaled by `k`: the
// encoder's moment convolution gives k * mean (and log variance + 2 ln k),
// the decoder's convolutions of the latent (conv_in, every spatial norm's
// conv_y / conv_b) take it back by 1 / k, so decode(encode(x)) is unchanged.
torch::Tensor FoldLatentScale(const std::string& name, torch::Tensor w,
                              int64_t latent_channels, double k);

// A VAE training run.
struct VaeTrainSpec {
  std::vector<std::string> records;  // Item lists of training clips.
  std::vector<std::string> heldout;  // Item lists for the PSNR at the end.
  nlohmann::json vae_config;         // diffusers config.json (fresh model).
  std::string init_from;             // Or a diffusers VAE directory.
  int64_t batch_size = 2;
  int64_t crop_size = 64;   // Square spatial crop (multiple of the factor).
  int64_t max_frames = 17;  // Frames per sample (1 + 8k; clip start random).
  double learning_rate = 1e-3;
  double weight_decay = 1e-4;
  int64_t warmup_steps = 50;  // Linear warm-up, then cosine to 10%.
  double l1_weight = 1.0;
  double mse_weight = 1.0;
  double kl_weight = 1e-6;
  double grad_clip = 1.0;
  double ema_decay = 0.999;
  int64_t max_steps = 0;
  int64_t checkpoint_interval = 0;  // 0: only at the end.
  int64_t seed = 0;
};

// True when `json` asks for VAE training (`model_type` is "vae", or
// "MODEL_TYPE_VAE" as the API spells it).
bool IsVaeSpec(const nlohmann::json& json);

// Checks every field that can be checked without reading data; errors are
// INVALID_ARGUMENT naming the field.
absl::Status ValidateVaeTrainSpec(const VaeTrainSpec& spec);

// Parses and validates a VAE spec; errors are INVALID_ARGUMENT naming the
// field.
absl::StatusOr<VaeTrainSpec> VaeTrainSpecFromJson(const nlohmann::json& json);

// Decoded clips as uint8 [T, H, W, 3].
absl::StatusOr<std::vector<torch::Tensor>> LoadClips(
    const std::vector<std::string>& lists);

// Mean PSNR (dB, frames in [0, 255]) of encode (mode) + decode through
// `vae` over `clips` (each cut to the longest 1 + 4k frames).
absl::StatusOr<double> ReconstructionPsnr(
    const vae::CogVideoXVae& vae, const std::vector<torch::Tensor>& clips);

// ReconstructionPsnr of the VAE checkpoint `dir` over the clips of
// `spec.heldout`; `clips` (optional) receives their number.
absl::StatusOr<double> HeldoutPsnr(const VaeTrainSpec& spec,
                                   const std::string& dir,
                                   int64_t* clips = nullptr);

class VaeTrainer {
 public:
  // Validates `spec`, decodes the clips and builds the model.
  static absl::StatusOr<std::unique_ptr<VaeTrainer>> Create(
      const VaeTrainSpec& spec, torch::Device device = torch::kCPU);

  // Runs step `next_step()`; StepStats.task_loss has "rec" and "kl".
  absl::StatusOr<StepStats> Step();

  // Writes the EMA weights in the diffusers layout to `dir` (replaced).
  absl::Status SaveCheckpoint(const std::string& dir) const;

  int64_t next_step() const { return next_step_; }
  bool done() const { return next_step_ >= spec_.max_steps; }
  const VaeTrainSpec& spec() const { return spec_; }

 private:
  VaeTrainer(VaeTrainSpec spec, vae::VaeConfig config, torch::Device device,
             vae::VaeModel model, vae::VaeModel ema,
             std::vector<torch::Tensor> clips);
  torch::Tensor SampleBatch(int64_t step) const;
  double LearningRate(int64_t step) const;

  VaeTrainSpec spec_;
  vae::VaeConfig config_;
  torch::Device device_;
  vae::VaeModel model_, ema_;
  std::vector<torch::Tensor> clips_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  int64_t next_step_ = 0;
};

}  // namespace lvs::trainer

#endif  // LVS_TRAINER_VAE_TRAINER_H_
