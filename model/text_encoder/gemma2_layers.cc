#include "model/text_encoder/gemma2_layers.h"

#include <cmath>
#include <limits>

namespace lvs::text_encoder {
namespace {

// The dtype's lowest finite value (torch.finfo(dtype).min).
double LowestValue(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kBFloat16:
      return static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest());
    case torch::kHalf:
      return static_cast<double>(std::numeric_limits<c10::Half>::lowest());
    case torch::kDouble:
      return std::numeric_limits<double>::lowest();
    default:
      return std::numeric_limits<float>::lowest();
  }
}

// [..., D] -> [..., D]: (x1, x2) -> (-x2, x1) with halves of D.
torch::Tensor RotateHalf(const torch::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// x [B, H, L, D] with rope tables [L, D] (broadcast over B and H).
torch::Tensor ApplyRotary(const torch::Tensor& x, const RotaryTables& rope) {
  return x * rope.cos + RotateHalf(x) * rope.sin;
}

torch::nn::Linear NoBiasLinear(int64_t in, int64_t out) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
}

}  // namespace

RotaryTables ComputeRotaryTables(const Gemma2Config& config, int64_t length,
                                 torch::ScalarType dtype,
                                 torch::Device device) {
  const auto i64 = torch::TensorOptions().dtype(torch::kLong).device(device);
  // inv_freq = 1 / theta^(arange(0, D, 2) / D), in float32.
  torch::Tensor exponent =
      torch::arange(0, config.head_dim, 2, i64).to(torch::kFloat) /
      static_cast<double>(config.head_dim);
  torch::Tensor inv_freq =
      torch::reciprocal(torch::pow(config.rope_theta, exponent));
  torch::Tensor positions = torch::arange(length, i64).to(torch::kFloat);
  // [L, 1] * [1, D/2] -> [L, D/2]
  torch::Tensor freqs = positions.unsqueeze(1) * inv_freq.unsqueeze(0);
  torch::Tensor angles = torch::cat({freqs, freqs}, -1);  // [L, D]
  return {angles.cos().to(dtype), angles.sin().to(dtype)};
}

AttentionMasks BuildAttentionMasks(const torch::Tensor& attention_mask,
                                   int64_t sliding_window,
                                   torch::ScalarType dtype) {
  const int64_t b = attention_mask.size(0);
  const int64_t l = attention_mask.size(1);
  const auto i64 = torch::TensorOptions()
                       .dtype(torch::kLong)
                       .device(attention_mask.device());
  torch::Tensor i = torch::arange(l, i64).view({l, 1});  // query index
  torch::Tensor j = torch::arange(l, i64).view({1, l});  // key index
  // [L, L] -> [1, 1, L, L]; [B, L] -> [B, 1, 1, L]; blocked is [B, 1, L, L].
  torch::Tensor blocked =
      j.gt(i).view({1, 1, l, l}) | attention_mask.eq(0).view({b, 1, 1, l});
  torch::Tensor outside_window = (i - j).ge(sliding_window).view({1, 1, l, l});
  const double lowest = LowestValue(dtype);
  torch::Tensor zeros = torch::zeros(
      {b, 1, l, l},
      torch::TensorOptions().dtype(dtype).device(attention_mask.device()));
  return {zeros.masked_fill(blocked, lowest),
          zeros.masked_fill(blocked | outside_window, lowest)};
}

Gemma2RMSNormImpl::Gemma2RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::zeros({dim}));
}

torch::Tensor Gemma2RMSNormImpl::forward(const torch::Tensor& x) {
  torch::Tensor xf = x.to(torch::kFloat);
  torch::Tensor out = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps_);
  out = out * (1.0 + weight.to(torch::kFloat));
  return out.to(x.scalar_type());
}

Gemma2AttentionImpl::Gemma2AttentionImpl(const Gemma2Config& config)
    : heads_(config.num_attention_heads),
      kv_heads_(config.num_key_value_heads),
      head_dim_(config.head_dim),
      scaling_(std::pow(config.query_pre_attn_scalar, -0.5)),
      softcap_(config.attn_logit_softcapping) {
  const int64_t hidden = config.hidden_size;
  q_proj = register_module("q_proj", NoBiasLinear(hidden, heads_ * head_dim_));
  k_proj =
      register_module("k_proj", NoBiasLinear(hidden, kv_heads_ * head_dim_));
  v_proj =
      register_module("v_proj", NoBiasLinear(hidden, kv_heads_ * head_dim_));
  o_proj = register_module("o_proj", NoBiasLinear(heads_ * head_dim_, hidden));
}

torch::Tensor Gemma2AttentionImpl::forward(const torch::Tensor& x,
                                           const RotaryTables& rope,
                                           const torch::Tensor& mask) {
  const int64_t b = x.size(0);
  const int64_t l = x.size(1);
  const int64_t groups = heads_ / kv_heads_;
  // [B, L, H*D] -> [B, L, H, D] -> [B, H, L, D]
  torch::Tensor q = ApplyRotary(
      q_proj(x).view({b, l, heads_, head_dim_}).transpose(1, 2), rope);
  // [B, L, Hkv*D] -> [B, L, Hkv, D] -> [B, Hkv, L, D]
  torch::Tensor k = ApplyRotary(
      k_proj(x).view({b, l, kv_heads_, head_dim_}).transpose(1, 2), rope);
  torch::Tensor v =
      v_proj(x).view({b, l, kv_heads_, head_dim_}).transpose(1, 2);
  std::vector<torch::Tensor> rows;
  rows.reserve(b);
  for (int64_t r = 0; r < b; ++r) {
    // GQA: query head h uses kv head h / groups.
    // [H, L, D] -> [Hkv, G*L, D]
    torch::Tensor qr = q[r].reshape({kv_heads_, groups * l, head_dim_});
    // [Hkv, G*L, D] x [Hkv, D, L] -> [Hkv, G*L, L] -> [H, L, L]
    torch::Tensor scores =
        torch::matmul(qr, k[r].transpose(1, 2)).view({heads_, l, l});
    scores.mul_(scaling_);
    if (softcap_) scores.div_(*softcap_).tanh_().mul_(*softcap_);
    scores.add_(mask[r]);  // [1, L, L] broadcast over heads
    torch::Tensor probs =
        torch::softmax(scores, -1, torch::kFloat).to(x.scalar_type());
    scores = torch::Tensor();
    // [H, L, L] -> [Hkv, G*L, L]; x [Hkv, L, D] -> [Hkv, G*L, D] -> [H, L, D]
    rows.push_back(torch::matmul(probs.view({kv_heads_, groups * l, l}), v[r])
                       .view({heads_, l, head_dim_}));
  }
  // [B, H, L, D] -> [B, L, H, D] -> [B, L, H*D]
  torch::Tensor out =
      torch::stack(rows).transpose(1, 2).reshape({b, l, heads_ * head_dim_});
  return o_proj(out);
}

Gemma2MLPImpl::Gemma2MLPImpl(const Gemma2Config& config) {
  const int64_t hidden = config.hidden_size;
  const int64_t inner = config.intermediate_size;
  gate_proj = register_module("gate_proj", NoBiasLinear(hidden, inner));
  up_proj = register_module("up_proj", NoBiasLinear(hidden, inner));
  down_proj = register_module("down_proj", NoBiasLinear(inner, hidden));
}

torch::Tensor Gemma2MLPImpl::forward(const torch::Tensor& x) {
  return down_proj(torch::gelu(gate_proj(x), "tanh") * up_proj(x));
}

Gemma2DecoderLayerImpl::Gemma2DecoderLayerImpl(const Gemma2Config& config) {
  const int64_t hidden = config.hidden_size;
  const double eps = config.rms_norm_eps;
  input_layernorm =
      register_module("input_layernorm", Gemma2RMSNorm(hidden, eps));
  self_attn = register_module("self_attn", Gemma2Attention(config));
  post_attention_layernorm =
      register_module("post_attention_layernorm", Gemma2RMSNorm(hidden, eps));
  pre_feedforward_layernorm =
      register_module("pre_feedforward_layernorm", Gemma2RMSNorm(hidden, eps));
  mlp = register_module("mlp", Gemma2MLP(config));
  post_feedforward_layernorm =
      register_module("post_feedforward_layernorm", Gemma2RMSNorm(hidden, eps));
}

torch::Tensor Gemma2DecoderLayerImpl::forward(const torch::Tensor& x,
                                              const RotaryTables& rope,
                                              const torch::Tensor& mask) {
  torch::Tensor h =
      x + post_attention_layernorm(self_attn(input_layernorm(x), rope, mask));
  return h + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(h)));
}

}  // namespace lvs::text_encoder
