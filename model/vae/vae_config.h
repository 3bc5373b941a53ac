// The architecture of a CogVideoX 3D causal VAE, read from a diffusers
// `config.json` (`AutoencoderKLCogVideoX`). Torch-free.
//
// Thread-safety: VaeConfig is a plain value; ParseVaeConfig and
// ReadVaeConfig are pure functions, safe to call concurrently.
#ifndef LVS_MODEL_VAE_VAE_CONFIG_H_
#define LVS_MODEL_VAE_VAE_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lvs::vae {

// The latent scale the reference multiplies encoder means by (caching
// latents) and divides DiT samples by (before decoding): a constant of the
// pipeline, not read from the VAE config. VAEs trained by lvs fold their
// measured scale into their weights so that this constant fits them.
inline constexpr double kPipelineLatentScale = 1.15258426;

// Hyper-parameters of AutoencoderKLCogVideoX. The encoder's down blocks use
// `block_out_channels` in order, the decoder's up blocks in reverse order.
struct VaeConfig {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  int64_t latent_channels = 16;
  std::vector<int64_t> block_out_channels;
  int64_t layers_per_block = 0;
  int64_t norm_num_groups = 0;
  double norm_eps = 1e-6;
  // Power of two: log2 of it is the number of leading down/up blocks that
  // also halve/double the time axis.
  int64_t temporal_compression_ratio = 4;
  // Default decode size; tiling defaults to tiles of half of it.
  int64_t sample_height = 480;
  int64_t sample_width = 720;
  // Latent scale as the config states it (informational: the pipeline and
  // lvs-extract use kPipelineLatentScale, as the reference does).
  double scaling_factor = kPipelineLatentScale;

  // Returns the number of blocks that compress time: log2 of the ratio.
  int64_t TemporalCompressLevel() const;
  // Returns the spatial down-sampling factor: 2^(blocks - 1).
  int64_t SpatialCompressionRatio() const;
};

// Parses the text of a diffusers config.json. Errors name `source` (the file)
// and the field that is missing, mistyped or out of range.
absl::StatusOr<VaeConfig> ParseVaeConfig(const std::string& text,
                                         const std::string& source);

// Reads and parses `path`.
absl::StatusOr<VaeConfig> ReadVaeConfig(const std::string& path);

}  // namespace lvs::vae

#endif  // LVS_MODEL_VAE_VAE_CONFIG_H_
