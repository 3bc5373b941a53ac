// The DiT block's attention: packed self-attention over each item's tokens
// (3D RoPE, GQA) plus gated cross-attention to the item's caption tokens
// sharing the same RoPE'd queries.
//
// Thread-safety: forward is const on the module state; safe to call
// concurrently.
#ifndef LVS_MODEL_DIT_ATTENTION_H_
#define LVS_MODEL_DIT_ATTENTION_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "model/dit/attention_kernels.h"
#include "model/dit/rope.h"

namespace lvs::dit {

// Shapes of one attention module.
struct AttentionModuleOptions {
  TORCH_ARG(int64_t, dim) = 0;
  TORCH_ARG(int64_t, n_heads) = 0;
  TORCH_ARG(int64_t, n_kv_heads) = 0;
  TORCH_ARG(int64_t, y_dim) = 0;    // Caption feature width.
  TORCH_ARG(bool, qk_norm) = true;  // LayerNorms q_norm, k_norm, ky_norm.
  TORCH_ARG(AttentionOptions, kernel);
};

// Sequence parallelism (Ulysses) seen from attention: each of size() ranks
// holds an equal contiguous share of the packed tokens (the sequence padded
// to a multiple of size()); around the attention kernels an all-to-all
// trades tokens for heads, so each rank attends over every token with
// H / size() heads. Implemented over c10d (model/parallel); every rank calls
// every method in the same order with the same shapes.
class AttentionParallel {
 public:
  virtual ~AttentionParallel() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // [L_local, H, D] -> [size * L_local, H / size, D] (head group rank()).
  virtual torch::Tensor ScatterHeads(const torch::Tensor& x) = 0;
  // Inverse of ScatterHeads: [size * L_local, H / size, D] -> [L_local, H, D].
  virtual torch::Tensor GatherHeads(const torch::Tensor& x) = 0;
  // [L_local, ...] -> [size * L_local, ...] in rank order.
  virtual torch::Tensor AllGatherTokens(const torch::Tensor& x) = 0;
  // Sums `x` over the ranks in place.
  virtual void AllReduceSum(torch::Tensor& x) = 0;
};

// Packed tokens and caption tokens of one forward call.
struct AttentionInputs {
  const std::vector<int64_t>* cu_x;  // Token offsets per item.
  const std::vector<int64_t>* cu_y;  // Caption token offsets per item.
  const RopeTable* rope;             // Rotation of this rank's tokens.
  // Null: all tokens are here. Otherwise this rank holds its share of the
  // tokens (cu_x still describes the whole sequence).
  AttentionParallel* parallel = nullptr;
};

// `wq`, `wk`, `wv`, `wo`, `wk_y`, `wv_y` (no bias), `gate` [n_heads] and,
// with qk_norm, `q_norm`, `k_norm`, `ky_norm` (LayerNorm eps 1e-5 over all
// heads together, before the head split).
class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const AttentionModuleOptions& options);

  // x [L, dim] packed tokens, y [Ly, y_dim] packed valid caption tokens
  // (already RMS-normalised) -> [L, dim]:
  // wo(self_attn + tanh(gate)[head] * cross_attn).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& y,
                        const AttentionInputs& in);

  torch::nn::Linear wq{nullptr}, wk{nullptr}, wv{nullptr}, wo{nullptr};
  torch::nn::Linear wk_y{nullptr}, wv_y{nullptr};
  torch::nn::LayerNorm q_norm{nullptr}, k_norm{nullptr}, ky_norm{nullptr};
  torch::Tensor gate;

 private:
  AttentionModuleOptions options_;
};
TORCH_MODULE(Attention);

}  // namespace lvs::dit

#endif  // LVS_MODEL_DIT_ATTENTION_H_
