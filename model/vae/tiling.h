// Spatial tiling of the decode (diffusers `enable_tiling` / `tiled_decode`
// of AutoencoderKLCogVideoX v0.30.2): the latent is cut into overlapping
// tiles, each tile is decoded with its own causal caches, and neighbouring
// tiles are blended linearly over the overlap before the kept parts are
// stitched. Defaults reproduce diffusers: tiles of half the config's sample
// size (240 x 360 px = 30 x 45 latents for CogVideoX-2b), overlap 1/6 in H
// and 1/5 in W (latent strides 25 and 36, blend 40 and 72 px, kept 200 x 288
// px).
//
// Thread-safety: pure functions.
#ifndef LVS_MODEL_VAE_TILING_H_
#define LVS_MODEL_VAE_TILING_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "model/vae/vae_config.h"

namespace lvs::vae {

// Tiled-decode settings.
struct TilingOptions {
  // Off: decode every chunk in one piece.
  bool enabled = false;
  // Tile size in output pixels; 0 takes half the config's sample size.
  int64_t tile_sample_height = 0;
  int64_t tile_sample_width = 0;
  // Fraction of a tile that overlaps its neighbour, in [0, 1).
  double overlap_height = 1.0 / 6.0;
  double overlap_width = 1.0 / 5.0;
};

// The tile layout over one latent.
struct TileGrid {
  int64_t tile_h = 0, tile_w = 0;    // Tile size in latents.
  int64_t keep_h = 0, keep_w = 0;    // Pixels kept per tile (= stride * s).
  int64_t blend_h = 0, blend_w = 0;  // Blend extents in pixels.
  std::vector<int64_t> row_starts;   // Latent row of each tile row.
  std::vector<int64_t> col_starts;   // Latent column of each tile column.
};

// Returns the grid for a latent of `height` x `width`, or InvalidArgument
// for a tile smaller than one latent or an overlap outside [0, 1). A latent
// no larger than one tile gives a 1 x 1 grid.
absl::StatusOr<TileGrid> PlanTiles(const TilingOptions& options,
                                   const VaeConfig& config, int64_t height,
                                   int64_t width);

// Blends the decoded tiles of one chunk (`tiles[r][c]` [B, C, T, h, w],
// modified in place, in row-major order as diffusers does) and returns the
// stitched frames [B, C, T, H, W].
torch::Tensor BlendAndStitch(std::vector<std::vector<torch::Tensor>>& tiles,
                             const TileGrid& grid);

}  // namespace lvs::vae

#endif  // LVS_MODEL_VAE_TILING_H_
