#include "model/dit/attention.h"

#include <cmath>

#include "model/dit/bf16_kernels.h"

namespace lvs::dit {
namespace {

constexpr double kQkNormEps = 1e-5;

torch::nn::Linear NoBias(int64_t in, int64_t out) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
}

torch::nn::LayerNorm QkNorm(int64_t dim) {
  return torch::nn::LayerNorm(
      torch::nn::LayerNormOptions({dim}).eps(kQkNormEps));
}

// norm(x), through the fused kernel on the bf16 CPU inference path.
torch::Tensor ApplyQkNorm(torch::nn::LayerNorm& norm, const torch::Tensor& x) {
  if (Bf16KernelApplies(x) && norm->weight.defined() && norm->bias.defined() &&
      norm->weight.scalar_type() == x.scalar_type() &&
      norm->bias.scalar_type() == x.scalar_type()) {
    return LayerNormBf16(x, norm->weight, norm->bias, norm->options.eps());
  }
  return norm(x);
}

}  // namespace

AttentionImpl::AttentionImpl(const AttentionModuleOptions& options)
    : options_(options) {
  const int64_t head_dim = options.dim() / options.n_heads();
  const int64_t kv_dim = options.n_kv_heads() * head_dim;
  wq = register_module("wq", NoBias(options.dim(), options.dim()));
  wk = register_module("wk", NoBias(options.dim(), kv_dim));
  wv = register_module("wv", NoBias(options.dim(), kv_dim));
  wk_y = register_module("wk_y", NoBias(options.y_dim(), kv_dim));
  wv_y = register_module("wv_y", NoBias(options.y_dim(), kv_dim));
  gate = register_parameter("gate", torch::zeros({options.n_heads()}));
  wo = register_module("wo", NoBias(options.dim(), options.dim()));
  if (options.qk_norm()) {
    q_norm = register_module("q_norm", QkNorm(options.dim()));
    k_norm = register_module("k_norm", QkNorm(kv_dim));
    ky_norm = register_module("ky_norm", QkNorm(kv_dim));
  }
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x,
                                     const torch::Tensor& y,
                                     const AttentionInputs& in) {
  const int64_t l = x.size(0), ly = y.size(0);
  const int64_t h = options_.n_heads(), hkv = options_.n_kv_heads();
  const int64_t d = options_.dim() / h;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  torch::Tensor q = wq(x), k = wk(x);
  if (options_.qk_norm()) {
    q = ApplyQkNorm(q_norm, q);
    k = ApplyQkNorm(k_norm, k);
  }
  // [L, H*D] -> [L, H, D]; [L, Hkv*D] -> [L, Hkv, D]
  q = ApplyRope(q.view({l, h, d}), *in.rope);
  k = ApplyRope(k.view({l, hkv, d}), *in.rope);
  torch::Tensor v = wv(x).view({l, hkv, d});
  AttentionParallel* sp = in.parallel;
  const int64_t ranks = sp ? sp->size() : 1;
  const int64_t total = in.cu_x->back();  // Tokens of the whole sequence.
  // Fewer kv heads than ranks' share: each kv head repeated for its query
  // heads (the same attention, as plain multi-head).
  const bool repeat_kv = sp && hkv % ranks != 0;
  const int64_t hkv_run = repeat_kv ? h : hkv;
  if (repeat_kv) {
    // [L, Hkv, D] -> [L, H, D]
    k = k.repeat_interleave(h / hkv, 1);
    v = v.repeat_interleave(h / hkv, 1);
  }
  if (sp) {
    // [L_local, H, D] -> [L_pad, H/N, D] -> [L, H/N, D] (padding dropped)
    q = sp->ScatterHeads(q).narrow(0, 0, total);
    k = sp->ScatterHeads(k).narrow(0, 0, total);
    v = sp->ScatterHeads(v).narrow(0, 0, total);
  }
  const int64_t hl = h / ranks, hkvl = hkv_run / ranks;  // Heads held here.
  torch::Tensor out =
      VarlenAttention(q, k, v, *in.cu_x, *in.cu_x, scale, options_.kernel());
  k = torch::Tensor();
  v = torch::Tensor();
  torch::Tensor yk = wk_y(y);
  if (options_.qk_norm()) yk = ApplyQkNorm(ky_norm, yk);
  // [Ly, Hkv*D] -> [Ly, Hkv, D] -> this rank's heads [Ly, Hkv/N, D]
  yk = yk.view({ly, hkv, d});
  torch::Tensor yv = wv_y(y).view({ly, hkv, d});
  torch::Tensor g = gate;
  if (repeat_kv) {
    // [Ly, Hkv, D] -> [Ly, H, D]
    yk = yk.repeat_interleave(h / hkv, 1);
    yv = yv.repeat_interleave(h / hkv, 1);
  }
  if (sp) {
    yk = yk.narrow(1, sp->rank() * hkvl, hkvl);
    yv = yv.narrow(1, sp->rank() * hkvl, hkvl);
    g = g.narrow(0, sp->rank() * hl, hl);
  }
  torch::Tensor cross =
      VarlenAttention(q, yk, yv, *in.cu_x, *in.cu_y, scale, options_.kernel());
  // [H] -> [1, H, 1]
  out.add_(g.tanh().view({1, hl, 1}) * cross);
  if (sp) {
    // [L, H/N, D] -> [L_pad, H/N, D] -> [L_local, H, D]
    out = torch::constant_pad_nd(out, {0, 0, 0, 0, 0, l * ranks - total});
    out = sp->GatherHeads(out);
  }
  // [L, H, D] -> [L, H*D]
  return wo(out.reshape({l, h * d}));
}

}  // namespace lvs::dit
