// Memory-efficient variable-length (packed) attention with grouped-query heads.
//
// Sequences of several items are packed along the token axis and described by
// cumulative lengths (`cu_seqlens`, as flash-attention's varlen API): query
// tokens of item i attend only to key tokens of item i, with no padding. The
// CPU kernel tiles queries and keys and keeps an online softmax, so peak
// memory is O(q_block x k_block) per head group instead of O(L^2); scores,
// softmax and the P.V product are float32 and the output is rounded once to
// the input dtype. bfloat16 operands on a CPU with native bf16 products
// (common::HaveBf16F32Gemm) are multiplied as bf16 with float32 results
// (exact products, float32 sums) and the float32 probabilities as a bf16
// hi + lo pair, so the arithmetic stays that of the float32 route. With
// LibTorch >= 2.1 on CUDA, segments go through
// scaled_dot_product_attention instead.
//
// Thread-safety: pure functions; safe to call concurrently.
#ifndef LVS_MODEL_DIT_ATTENTION_KERNELS_H_
#define LVS_MODEL_DIT_ATTENTION_KERNELS_H_

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace lvs::dit {

// Tiling of the memory-efficient kernel.
struct AttentionOptions {
  int64_t q_block = 1024;  // Query tokens per tile (per query head).
  int64_t k_block = 2048;  // Key tokens per tile.
  // Use scaled_dot_product_attention where it applies (LibTorch >= 2.1,
  // CUDA tensors). Tests turn it off to exercise the tiled kernel.
  bool allow_sdpa = true;
};

// Computes softmax(scale * q k^T) v independently for every packed item.
//   q: [Lq, Hq, D], k and v: [Lk, Hkv, D] (Hq a multiple of Hkv; query head h
//   uses kv head h / (Hq / Hkv)), same dtype and device.
//   cu_q, cu_k: cumulative lengths, size n_items + 1, starting at 0 and
//   ending at Lq / Lk. An item with no key tokens gets a zero output.
// Returns [Lq, Hq, D] in q's dtype.
// REQUIRES: shapes and offsets consistent (checked with TORCH_CHECK).
torch::Tensor VarlenAttention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v,
                              const std::vector<int64_t>& cu_q,
                              const std::vector<int64_t>& cu_k, double scale,
                              const AttentionOptions& options = {});

// The tiled kernel for one item: q [Lq, Hq, D], k/v [Lk, Hkv, D] -> [Lq, Hq,
// D]. Exposed for tests and benchmarks; VarlenAttention calls it per item.
torch::Tensor TiledAttention(const torch::Tensor& q, const torch::Tensor& k,
                             const torch::Tensor& v, double scale,
                             const AttentionOptions& options = {});

}  // namespace lvs::dit

#endif  // LVS_MODEL_DIT_ATTENTION_KERNELS_H_
