// One DiT layer: sandwich-normalised attention and SwiGLU feed-forward,
// modulated by the per-item conditioning vector (adaLN, scale and tanh gate,
// no shift).
//
// Thread-safety: forward is const on the module state; safe to call
// concurrently.
#ifndef LVS_MODEL_DIT_TRANSFORMER_BLOCK_H_
#define LVS_MODEL_DIT_TRANSFORMER_BLOCK_H_

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>

#include "model/dit/attention.h"
#include "model/dit/rms_norm.h"

namespace lvs::dit {

// SwiGLU: `w2(silu(w1 x) * w3 x)`, no biases.
class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t dim, int64_t hidden);

  // x [L, dim] -> [L, dim].
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear w1{nullptr}, w2{nullptr}, w3{nullptr};
};
TORCH_MODULE(FeedForward);

// Shapes of one layer.
struct TransformerBlockOptions {
  TORCH_ARG(AttentionModuleOptions, attention);
  TORCH_ARG(int64_t, ffn_hidden) = 0;
  TORCH_ARG(int64_t, adaln_dim) = 0;
  TORCH_ARG(double, norm_eps) = 1e-5;
};

// Per-call inputs shared by every layer.
struct BlockInputs {
  AttentionInputs attention;
  torch::Tensor src_ids;  // [L] item index of every token.
  torch::Tensor y;        // [Ly, y_dim] packed valid caption tokens.
  torch::Tensor c;        // [B, adaln_dim] conditioning per item.
};

// `attention`, `feed_forward`, `attention_norm1`, `attention_norm2`,
// `ffn_norm1`, `ffn_norm2`, `attention_y_norm`, `adaLN_modulation.1`.
class TransformerBlockImpl : public torch::nn::Module {
 public:
  explicit TransformerBlockImpl(const TransformerBlockOptions& options);

  // x [L, dim] -> [L, dim]. With `trace`, stores `<prefix>attention_out`
  // (after wo) and `<prefix>feed_forward_out`.
  torch::Tensor forward(torch::Tensor x, const BlockInputs& in,
                        std::map<std::string, torch::Tensor>* trace = nullptr,
                        const std::string& prefix = "");

  // The input of attention (attention_norm1(x) * (1 + scale_msa)), what
  // forward computes first; step caching compares it between steps.
  torch::Tensor ModulatedAttentionInput(const torch::Tensor& x,
                                        const BlockInputs& in);

  Attention attention{nullptr};
  FeedForward feed_forward{nullptr};
  RMSNorm attention_norm1{nullptr}, attention_norm2{nullptr};
  RMSNorm ffn_norm1{nullptr}, ffn_norm2{nullptr};
  RMSNorm attention_y_norm{nullptr};
  torch::nn::Sequential adaLN_modulation{nullptr};
};
TORCH_MODULE(TransformerBlock);

}  // namespace lvs::dit

#endif  // LVS_MODEL_DIT_TRANSFORMER_BLOCK_H_
