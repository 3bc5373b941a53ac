// Gemma-2 decoder building blocks (transformers `modeling_gemma2.py`, eager
// attention), registered under the checkpoint's names so every key of
// `model.layers.N.*` is found by grepping this file.
//
// Numerics follow golden README 6 and 8.2: RMSNorm in float32 with (1 + w)
// then cast to the activation dtype; rotate-half RoPE whose cos/sin are
// computed in float32 and cast; scores `(q . k) * query_pre_attn_scalar^-0.5`,
// soft-capped, plus an additive mask holding the dtype's lowest value,
// softmax in float32 cast back; GQA without copying keys and values.
//
// Memory: attention runs one batch row at a time, so one [heads, L, L] score
// block (and its softmax) exists per layer at any moment.
//
// Thread-safety: forward() only reads parameters; concurrent calls on one
// module are safe when no thread mutates it.
#ifndef LVS_MODEL_TEXT_ENCODER_GEMMA2_LAYERS_H_
#define LVS_MODEL_TEXT_ENCODER_GEMMA2_LAYERS_H_

#include <torch/torch.h>

#include "model/text_encoder/gemma2_config.h"

namespace lvs::text_encoder {

// Rotary tables for positions 0..length-1: cos and sin [L, head_dim] in
// `dtype` (computed in float32, `inv_freq = 1 / theta^(2i / head_dim)`,
// angles concatenated twice for the rotate-half layout).
struct RotaryTables {
  torch::Tensor cos;
  torch::Tensor sin;
};
RotaryTables ComputeRotaryTables(const Gemma2Config& config, int64_t length,
                                 torch::ScalarType dtype, torch::Device device);

// Additive attention masks [B, 1, L, L] in `dtype`: 0 where key j is visible
// to query i, the dtype's lowest finite value elsewhere.
struct AttentionMasks {
  torch::Tensor full;     // j <= i and token j is not padding.
  torch::Tensor sliding;  // Also i - j < sliding_window (even layers).
};
AttentionMasks BuildAttentionMasks(const torch::Tensor& attention_mask,
                                   int64_t sliding_window,
                                   torch::ScalarType dtype);

// Gemma RMSNorm: `x * rsqrt(mean(x^2) + eps) * (1 + weight)` in float32,
// cast back to x's dtype. Checkpoint key: `weight`.
class Gemma2RMSNormImpl : public torch::nn::Module {
 public:
  Gemma2RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(Gemma2RMSNorm);

// Self-attention with GQA, rotate-half RoPE, logit soft-capping and the
// additive mask. Keys: `q_proj`, `k_proj`, `v_proj`, `o_proj` (no biases).
class Gemma2AttentionImpl : public torch::nn::Module {
 public:
  explicit Gemma2AttentionImpl(const Gemma2Config& config);
  // x [B, L, hidden]; rope tables [L, head_dim]; mask [B, 1, L, L].
  torch::Tensor forward(const torch::Tensor& x, const RotaryTables& rope,
                        const torch::Tensor& mask);

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr},
      o_proj{nullptr};

 private:
  int64_t heads_, kv_heads_, head_dim_;
  double scaling_;
  std::optional<double> softcap_;
};
TORCH_MODULE(Gemma2Attention);

// Gated MLP `down_proj(gelu_tanh(gate_proj(x)) * up_proj(x))`.
class Gemma2MLPImpl : public torch::nn::Module {
 public:
  explicit Gemma2MLPImpl(const Gemma2Config& config);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Gemma2MLP);

// One decoder layer with pre- and post-norms around attention and MLP.
class Gemma2DecoderLayerImpl : public torch::nn::Module {
 public:
  explicit Gemma2DecoderLayerImpl(const Gemma2Config& config);
  // x [B, L, hidden] -> [B, L, hidden]; `mask` is the layer's mask (sliding
  // for even layers, full for odd ones).
  torch::Tensor forward(const torch::Tensor& x, const RotaryTables& rope,
                        const torch::Tensor& mask);

  Gemma2RMSNorm input_layernorm{nullptr};
  Gemma2Attention self_attn{nullptr};
  Gemma2RMSNorm post_attention_layernorm{nullptr};
  Gemma2RMSNorm pre_feedforward_layernorm{nullptr};
  Gemma2MLP mlp{nullptr};
  Gemma2RMSNorm post_feedforward_layernorm{nullptr};
};
TORCH_MODULE(Gemma2DecoderLayer);

}  // namespace lvs::text_encoder

#endif  // LVS_MODEL_TEXT_ENCODER_GEMMA2_LAYERS_H_
