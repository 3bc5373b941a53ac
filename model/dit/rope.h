// 3D rotary position embedding of the DiT: interleaved pairs (2k, 2k+1)
// rotated by angles of the token's patch-grid position (f, h, w), with the
// time, height and width angle blocks concatenated in that order.
//
// Only the angles of the grids in use are computed (the reference's full
// [64, 128, 128, head_dim/2] table would be 604 MB for head_dim 144).
//
// Thread-safety: pure functions; safe to call concurrently.
#ifndef LVS_MODEL_DIT_ROPE_H_
#define LVS_MODEL_DIT_ROPE_H_

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <vector>

namespace lvs::dit {

// Patch-grid size of one item: tokens along time, height and width.
using TokenGrid = std::array<int64_t, 3>;

// Rotation of every token of a packed sequence, float32 [L, head_dim/2].
struct RopeTable {
  torch::Tensor cos;
  torch::Tensor sin;
};

// Returns the rotations of the tokens of `grids` packed in order (each grid
// f-major, then h, then w). Per axis a with width d_a (`axes_dims`, real
// dimensions) the frequencies are omega_k = 1 / theta^(2k / d_a), k < d_a/2,
// computed in float64; the angle position * omega_k is rounded to float32
// before cos/sin (as torch.polar on the reference's float32 table).
// REQUIRES: every grid within `axes_max_len` (checked with TORCH_CHECK).
RopeTable ComputeRope(const std::vector<TokenGrid>& grids,
                      const std::array<int64_t, 3>& axes_dims,
                      const std::array<int64_t, 3>& axes_max_len, double theta,
                      torch::Device device);

// Rotates x [L, H, D] by `rope` (float32 arithmetic, result in x's dtype).
torch::Tensor ApplyRope(const torch::Tensor& x, const RopeTable& rope);

}  // namespace lvs::dit

#endif  // LVS_MODEL_DIT_ROPE_H_
