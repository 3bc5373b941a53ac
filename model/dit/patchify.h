// Patch layout of the DiT: a list of latents [C, F, H, W] of different sizes
// to one packed token sequence, and back.
//
// A token holds a pF x P x P patch; tokens are ordered (f, h, w) row-major,
// features (pf, ph, pw, c) with c fastest. Images (F == 1) with pF > 1 are
// repeated pF times along F and cropped back by Unpatchify.
//
// Thread-safety: pure functions; safe to call concurrently.
#ifndef LVS_MODEL_DIT_PATCHIFY_H_
#define LVS_MODEL_DIT_PATCHIFY_H_

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "model/dit/dit_config.h"
#include "model/dit/rope.h"

namespace lvs::dit {

// Where each item's tokens lie in a packed sequence.
struct PackedLayout {
  std::vector<TokenGrid> grids;     // Tokens along (f, h, w) per item.
  std::vector<int64_t> frames;      // Original F of each item.
  std::vector<int64_t> cu_seqlens;  // Size n_items + 1, from 0 to L.
};

// Packs `items` ([C, F_i, H_i, W_i]) into tokens [L, pF*P*P*C] and fills
// `layout`. REQUIRES: F_i == 1 or divisible by pF; H_i, W_i divisible by P
// (checked with TORCH_CHECK).
torch::Tensor Patchify(const std::vector<torch::Tensor>& items,
                       const PatchComb& patch, PackedLayout* layout);

// Inverse of Patchify: tokens [L, pF*P*P*C] -> items [C, F_i, H_i, W_i].
std::vector<torch::Tensor> Unpatchify(const torch::Tensor& tokens,
                                      const PackedLayout& layout,
                                      const PatchComb& patch);

// Returns the item index of every token, int64 [L] on `device`.
torch::Tensor SourceIds(const PackedLayout& layout, torch::Device device);

}  // namespace lvs::dit

#endif  // LVS_MODEL_DIT_PATCHIFY_H_
