// CogVideoXVae: the CogVideoX 3D causal VAE (diffusers
// AutoencoderKLCogVideoX v0.30.2) loaded from the diffusers layout
// (`config.json` + `diffusion_pytorch_model.safetensors`).
//
// Decode runs the decoder over chunks of 2 latent frames (the first chunk
// absorbs an odd remainder) with the causal caches carried between chunks,
// so n latent frames give 4n frames (n even) or 4n - 3 (n odd), and can hand
// every decoded chunk to a callback as soon as it is ready. Optional spatial
// tiling bounds the activation memory (tiling.h). Encode runs the encoder in
// one pass, or over frame chunks with the caches carried (the trainer's
// pre-extraction). The latent scale factor (config.scaling_factor) is the
// pipeline's business: Decode takes and Encode returns unscaled latents.
//
// On CUDA, float32 convolutions follow the process's TF32 setting: cuDNN
// allows TF32 by default, which put an H100 float32 decode at 6.6e-4 of peak
// from the CPU golden; call at::globalContext().setAllowTF32CuDNN(false) in
// the program for golden-tight float32.
//
// Thread-safety: after Create(), Decode and Encode only read the weights
// and keep their caches on the stack, so concurrent calls are safe.
#ifndef LVS_MODEL_VAE_VAE_H_
#define LVS_MODEL_VAE_VAE_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "model/vae/decoder3d.h"
#include "model/vae/encoder3d.h"
#include "model/vae/tiling.h"
#include "model/vae/vae_config.h"

namespace lvs::vae {

// How the VAE is instantiated and run.
struct VaeOptions {
  // Weights and activations: kFloat32 (F16 widened exactly) or kBFloat16
  // (F16 -> BF16, round to nearest even).
  torch::ScalarType dtype = torch::kFloat32;
  torch::Device device = torch::kCPU;
  TilingOptions tiling;
};

// The encoder's diagonal Gaussian `latent_dist`, each [B, Z, T', h, w].
struct LatentDist {
  torch::Tensor mean;
  torch::Tensor logvar;  // Clamped to [-30, 20].
  torch::Tensor std;     // exp(logvar / 2).

  // Returns the distribution's mode (the mean).
  const torch::Tensor& Mode() const { return mean; }
};

// Receives the frames [B, 3, t, H, W] of one decoded chunk, in order. A
// non-OK status stops the decode, which returns it.
using ChunkFn = std::function<absl::Status(const torch::Tensor& frames_chunk)>;

// Receives the decoder's stage outputs (see StageFn) of chunk `chunk`.
using TraceFn = std::function<void(int64_t chunk, const std::string& stage,
                                   const torch::Tensor& value)>;

// Root module; checkpoint keys `encoder.*` and `decoder.*`.
class VaeModelImpl : public torch::nn::Module {
 public:
  explicit VaeModelImpl(const VaeConfig& config);
  Encoder3D encoder{nullptr};
  Decoder3D decoder{nullptr};
};
TORCH_MODULE(VaeModel);

// Latent frames decoded per decoder call (diffusers
// num_latent_frames_batch_size); the first chunk takes an odd remainder.
inline constexpr int64_t kLatentFramesPerChunk = 2;

// Returns [start, length) of every decode chunk of `n` latent frames, in
// order (none for n < 2).
std::vector<std::pair<int64_t, int64_t>> DecodeChunks(int64_t n);

// Returns the frame count decoding `latent_frames` latents gives, or
// InvalidArgument for fewer than 2 (no chunk to decode).
absl::StatusOr<int64_t> DecodedFrameCount(const VaeConfig& config,
                                          int64_t latent_frames);

class CogVideoXVae {
 public:
  // Loads `dir`/config.json and `dir`/diffusion_pytorch_model.safetensors
  // (strict: every tensor present, none extra, every shape right).
  static absl::StatusOr<std::unique_ptr<CogVideoXVae>> Create(
      const std::string& dir, const VaeOptions& options);

  // Builds the architecture of `config` with LibTorch's default random
  // initialisation (benchmarks, tests, training from scratch).
  static absl::StatusOr<std::unique_ptr<CogVideoXVae>> CreateRandom(
      const VaeConfig& config, const VaeOptions& options);

  // Decodes latents z [B, Z, n, h, w] (n >= 2, finite) to frames
  // [B, 3, T, 8h, 8w] in the run dtype on the run device. `on_chunk` gets
  // each chunk's frames as soon as they are decoded; `on_stage` gets the
  // decoder's stage outputs per chunk, for tracing (untiled decode only).
  // An error from `on_chunk` stops the decode and is returned as is.
  absl::StatusOr<torch::Tensor> Decode(const torch::Tensor& z,
                                       const ChunkFn& on_chunk = {},
                                       const TraceFn& on_stage = {}) const;

  // Decode with the tiles spread over this VAE and `helpers` (the same
  // weights, other devices; not owned): tile k of each chunk runs on rank
  // k % (1 + helpers.size()), each rank on its own thread, and is blended
  // on this VAE's device. The result equals the single-device tiled decode.
  // Without tiling (or with no helper) this is Decode.
  absl::StatusOr<torch::Tensor> DecodeParallel(
      const torch::Tensor& z, const std::vector<const CogVideoXVae*>& helpers,
      const ChunkFn& on_chunk = {}) const;

  // Encodes video [B, 3, T, H, W] in [-1, 1] (H, W multiples of the
  // spatial factor) in one pass.
  absl::StatusOr<LatentDist> Encode(const torch::Tensor& video) const;

  // Encodes video in chunks of `frames_per_chunk` frames (the last chunk
  // takes what is left) with the causal caches carried between chunks, and
  // concatenates the chunks' latents (97 frames in chunks of 32: 8+8+8+1).
  absl::StatusOr<LatentDist> EncodeChunked(const torch::Tensor& video,
                                           int64_t frames_per_chunk) const;

  // Returns the architecture.
  const VaeConfig& config() const { return config_; }
  // Returns the run options.
  const VaeOptions& options() const { return options_; }
  // Returns the module tree (weights in the run dtype and device).
  const VaeModel& model() const { return model_; }

 private:
  CogVideoXVae(VaeConfig config, VaeOptions options, VaeModel model);

  absl::StatusOr<torch::Tensor> DecodeWith(
      const torch::Tensor& z, const std::vector<const CogVideoXVae*>& helpers,
      const ChunkFn& on_chunk, const TraceFn& on_stage) const;
  absl::StatusOr<torch::Tensor> DecodeChecked(
      const torch::Tensor& z, const std::vector<const CogVideoXVae*>& helpers,
      const ChunkFn& on_chunk, const TraceFn& on_stage) const;
  absl::StatusOr<LatentDist> EncodeChecked(const torch::Tensor& video,
                                           int64_t frames_per_chunk) const;
  absl::Status CheckVideo(const torch::Tensor& video) const;

  VaeConfig config_;
  VaeOptions options_;
  VaeModel model_;
};

}  // namespace lvs::vae

#endif  // LVS_MODEL_VAE_VAE_H_
