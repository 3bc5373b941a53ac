#include "model/dit/transformer_block.h"

namespace lvs::dit {
namespace {

torch::nn::Linear NoBias(int64_t in, int64_t out) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
}

}  // namespace

FeedForwardImpl::FeedForwardImpl(int64_t dim, int64_t hidden) {
  w1 = register_module("w1", NoBias(dim, hidden));
  w2 = register_module("w2", NoBias(hidden, dim));
  w3 = register_module("w3", NoBias(dim, hidden));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  if (torch::GradMode::is_enabled()) return w2(torch::silu(w1(x)) * w3(x));
  // Inference: the same arithmetic in the [L, hidden] buffer of w1.
  torch::Tensor h = w1(x);
  torch::silu_(h);
  return w2(h.mul_(w3(x)));
}

TransformerBlockImpl::TransformerBlockImpl(
    const TransformerBlockOptions& options) {
  const AttentionModuleOptions& a = options.attention();
  const int64_t dim = a.dim();
  auto norm = [&](const char* name, int64_t width) {
    return register_module(
        name, RMSNorm(RMSNormOptions(width).eps(options.norm_eps())));
  };
  attention = register_module("attention", Attention(a));
  feed_forward =
      register_module("feed_forward", FeedForward(dim, options.ffn_hidden()));
  attention_norm1 = norm("attention_norm1", dim);
  ffn_norm1 = norm("ffn_norm1", dim);
  attention_norm2 = norm("attention_norm2", dim);
  ffn_norm2 = norm("ffn_norm2", dim);
  attention_y_norm = norm("attention_y_norm", a.y_dim());
  adaLN_modulation = register_module(
      "adaLN_modulation",
      torch::nn::Sequential(torch::nn::SiLU(),
                            torch::nn::Linear(options.adaln_dim(), 4 * dim)));
}

torch::Tensor TransformerBlockImpl::forward(
    torch::Tensor x, const BlockInputs& in,
    std::map<std::string, torch::Tensor>* trace, const std::string& prefix) {
  // [B, 4*dim] -> 4 x [B, dim], in this order.
  std::vector<torch::Tensor> mod = adaLN_modulation->forward(in.c).chunk(4, 1);
  // [B, dim] -> [L, dim] by item; one item broadcasts its row instead.
  auto per_token = [&](const torch::Tensor& v) {
    return v.size(0) == 1 ? v : v.index_select(0, in.src_ids);
  };
  const torch::Tensor& scale_msa = mod[0];
  const torch::Tensor& gate_msa = mod[1];
  const torch::Tensor& scale_mlp = mod[2];
  const torch::Tensor& gate_mlp = mod[3];

  // x + norm(v) * g and norm(x) * (1 + s) as single passes (ForwardFused).
  torch::Tensor attn =
      attention(attention_norm1->ForwardFused(x, per_token(1 + scale_msa)),
                attention_y_norm(in.y), in.attention);
  if (trace) (*trace)[prefix + "attention_out"] = attn;
  x = attention_norm2->ForwardFused(attn, per_token(gate_msa.tanh()), x);
  attn = torch::Tensor();

  torch::Tensor ffn =
      feed_forward(ffn_norm1->ForwardFused(x, per_token(1 + scale_mlp)));
  if (trace) (*trace)[prefix + "feed_forward_out"] = ffn;
  return ffn_norm2->ForwardFused(ffn, per_token(gate_mlp.tanh()), x);
}

torch::Tensor TransformerBlockImpl::ModulatedAttentionInput(
    const torch::Tensor& x, const BlockInputs& in) {
  // [B, 4*dim] -> the first quarter, scale_msa [B, dim].
  torch::Tensor scale_msa = adaLN_modulation->forward(in.c).chunk(4, 1)[0];
  if (scale_msa.size(0) == 1) {
    return attention_norm1->ForwardFused(x, 1 + scale_msa);
  }
  return attention_norm1->ForwardFused(
      x, (1 + scale_msa).index_select(0, in.src_ids));
}

}  // namespace lvs::dit
