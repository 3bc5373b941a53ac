#include "model/dit/attention_kernels.h"

#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <limits>

#include "model/common/bf16_gemm.h"
#include "model/dit/bf16_kernels.h"

namespace lvs::dit {
namespace {

#if TORCH_VERSION_MAJOR > 2 || \
    (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define LVS_DIT_HAVE_SDPA 1
// One item through scaled_dot_product_attention (flash / memory-efficient
// kernels on CUDA). q [Lq, Hq, D], k/v [Lk, Hkv, D] -> [Lq, Hq, D].
torch::Tensor SdpaAttention(const torch::Tensor& q, const torch::Tensor& k,
                            const torch::Tensor& v, double scale) {
  const int64_t n_rep = q.size(1) / k.size(1);
  // [L, H, D] -> [1, H, L, D]
  torch::Tensor qh = q.permute({1, 0, 2}).unsqueeze(0);
  torch::Tensor kh =
      k.repeat_interleave(n_rep, 1).permute({1, 0, 2}).unsqueeze(0);
  torch::Tensor vh =
      v.repeat_interleave(n_rep, 1).permute({1, 0, 2}).unsqueeze(0);
  torch::Tensor out = at::scaled_dot_product_attention(
      qh, kh, vh, /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/false,
      scale);
  // [1, H, Lq, D] -> [Lq, H, D]
  return out.squeeze(0).permute({1, 0, 2});
}
#endif

// Attention of `qb` (rows = query head x token, float32 [R, D]) over one kv
// head's keys/values (float32 [Lk, D]) with key tiles and an online softmax.
torch::Tensor OnlineSoftmaxRows(const torch::Tensor& qb,
                                const torch::Tensor& kf,
                                const torch::Tensor& vf, double scale,
                                int64_t k_block) {
  const int64_t lk = kf.size(0);
  if (lk <= k_block) {
    torch::Tensor s = torch::mm(qb, kf.t()).mul_(scale);  // [R, Lk]
    return torch::mm(torch::softmax(s, -1), vf);          // [R, D]
  }
  const int64_t rows = qb.size(0);
  torch::Tensor m = torch::full(
      {rows, 1}, -std::numeric_limits<float>::infinity(), qb.options());
  torch::Tensor l = torch::zeros({rows, 1}, qb.options());
  torch::Tensor acc = torch::zeros({rows, vf.size(1)}, qb.options());
  for (int64_t ks = 0; ks < lk; ks += k_block) {
    const int64_t n = std::min(k_block, lk - ks);
    torch::Tensor s =
        torch::mm(qb, kf.narrow(0, ks, n).t()).mul_(scale);  // [R, n]
    torch::Tensor m_new = torch::maximum(m, std::get<0>(s.max(-1, true)));
    torch::Tensor alpha = (m - m_new).exp_();
    s.sub_(m_new).exp_();  // s now holds the tile's unnormalised probabilities.
    l.mul_(alpha).add_(s.sum(-1, true));
    acc.mul_(alpha).addmm_(s, vf.narrow(0, ks, n));
    m = m_new;
  }
  return acc.div_(l);
}

// acc (+)= p.v with p float32 [R, n] and v bf16 [n, D], acc float32:
// p splits into bf16 hi + lo, so the product keeps p to about 16 bits (the
// reference multiplies float32 probabilities) at bf16 speed.
void AddProbsTimesValues(const torch::Tensor& p, const torch::Tensor& v,
                         torch::Tensor& acc, bool accumulate) {
  torch::Tensor hi, lo;
  SplitBf16(p, &hi, &lo);
  common::GemmBf16F32(hi, v, acc, accumulate);
  common::GemmBf16F32(lo, v, acc, /*accumulate=*/true);
}

// The bf16 form of OnlineSoftmaxRows: qb [R, D] and kb, vb [Lk, D] bfloat16;
// scores are exact bf16 products accumulated in float32, softmax and P.V in
// float32 as in the float32 route; returns float32 [R, D].
torch::Tensor OnlineSoftmaxRowsBf16(const torch::Tensor& qb,
                                    const torch::Tensor& kb,
                                    const torch::Tensor& vb, double scale,
                                    int64_t k_block) {
  const int64_t rows = qb.size(0), lk = kb.size(0);
  const auto f32 = qb.options().dtype(torch::kFloat32);
  torch::Tensor acc = torch::empty({rows, vb.size(1)}, f32);
  if (lk <= k_block) {
    torch::Tensor s = torch::empty({rows, lk}, f32);
    common::GemmBf16F32(qb, kb.t(), s, /*accumulate=*/false);
    AddProbsTimesValues(torch::softmax(s.mul_(scale), -1), vb, acc,
                        /*accumulate=*/false);
    return acc;
  }
  torch::Tensor m, l;
  for (int64_t ks = 0; ks < lk; ks += k_block) {
    const int64_t n = std::min(k_block, lk - ks);
    torch::Tensor s = torch::empty({rows, n}, f32);
    common::GemmBf16F32(qb, kb.narrow(0, ks, n).t(), s, /*accumulate=*/false);
    s.mul_(scale);
    torch::Tensor m_tile = std::get<0>(s.max(-1, true));  // [R, 1]
    if (ks == 0) {
      m = m_tile;
    } else {
      torch::Tensor m_new = torch::maximum(m, m_tile);
      torch::Tensor alpha = (m - m_new).exp_();
      l.mul_(alpha);
      acc.mul_(alpha);
      m = m_new;
    }
    s.sub_(m).exp_();  // The tile's unnormalised probabilities.
    l = ks == 0 ? s.sum(-1, true) : l.add_(s.sum(-1, true));
    AddProbsTimesValues(s, vb.narrow(0, ks, n), acc, /*accumulate=*/ks > 0);
  }
  return acc.div_(l);
}

// Whether TiledAttention takes the bf16 route for these operands (inference
// only: the oneDNN products record no autograd graph).
bool UseBf16Kernel(const torch::Tensor& q, const torch::Tensor& k,
                   const torch::Tensor& v) {
  return !torch::GradMode::is_enabled() &&
         q.scalar_type() == torch::kBFloat16 &&
         k.scalar_type() == torch::kBFloat16 &&
         v.scalar_type() == torch::kBFloat16 && q.device().is_cpu() &&
         k.device().is_cpu() && v.device().is_cpu() &&
         common::HaveBf16F32Gemm();
}

}  // namespace

torch::Tensor TiledAttention(const torch::Tensor& q, const torch::Tensor& k,
                             const torch::Tensor& v, double scale,
                             const AttentionOptions& options) {
  TORCH_CHECK(q.dim() == 3 && k.dim() == 3 && v.dim() == 3,
              "TiledAttention: q, k, v must be [L, H, D]");
  TORCH_CHECK(k.sizes() == v.sizes(), "TiledAttention: k and v shapes differ");
  TORCH_CHECK(q.size(2) == k.size(2), "TiledAttention: head dims differ");
  TORCH_CHECK(k.size(1) > 0 && q.size(1) % k.size(1) == 0,
              "TiledAttention: query heads ", q.size(1),
              " not a multiple of kv heads ", k.size(1));
  TORCH_CHECK(options.q_block > 0 && options.k_block > 0,
              "TiledAttention: block sizes must be positive");
  const int64_t lq = q.size(0), lk = k.size(0), d = q.size(2);
  const int64_t n_kv = k.size(1), n_rep = q.size(1) / n_kv;
  torch::Tensor out = torch::empty(q.sizes(), q.options());
  if (lq == 0) return out;
  if (lk == 0) return out.zero_();
  // bf16 operands stay bf16 where the CPU multiplies bf16 natively; the
  // float32 route converts them.
  const bool bf16 = UseBf16Kernel(q, k, v);
  const auto dtype = bf16 ? torch::kBFloat16 : torch::kFloat32;
  for (int64_t g = 0; g < n_kv; ++g) {
    // One kv head and the n_rep query heads that share it.
    torch::Tensor kf = k.select(1, g).to(dtype).contiguous();  // [Lk, D]
    torch::Tensor vf = v.select(1, g).to(dtype).contiguous();  // [Lk, D]
    torch::Tensor qg = q.narrow(1, g * n_rep, n_rep);          // [Lq, n_rep, D]
    for (int64_t qs = 0; qs < lq; qs += options.q_block) {
      const int64_t n = std::min(options.q_block, lq - qs);
      // [n, n_rep, D] -> [n_rep, n, D] -> [n_rep * n, D]
      torch::Tensor qb =
          qg.narrow(0, qs, n).permute({1, 0, 2}).to(dtype).reshape(
              {n_rep * n, d});
      torch::Tensor ob =
          bf16 ? OnlineSoftmaxRowsBf16(qb, kf, vf, scale, options.k_block)
               : OnlineSoftmaxRows(qb, kf, vf, scale, options.k_block);
      // [n_rep * n, D] -> [n_rep, n, D] -> [n, n_rep, D]
      out.narrow(0, qs, n)
          .narrow(1, g * n_rep, n_rep)
          .copy_(ob.view({n_rep, n, d}).permute({1, 0, 2}));
    }
  }
  return out;
}

torch::Tensor VarlenAttention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v,
                              const std::vector<int64_t>& cu_q,
                              const std::vector<int64_t>& cu_k, double scale,
                              const AttentionOptions& options) {
  TORCH_CHECK(cu_q.size() == cu_k.size() && !cu_q.empty(),
              "VarlenAttention: cu_q and cu_k must have the same size >= 1");
  TORCH_CHECK(cu_q.front() == 0 && cu_q.back() == q.size(0),
              "VarlenAttention: cu_q must run from 0 to ", q.size(0));
  TORCH_CHECK(cu_k.front() == 0 && cu_k.back() == k.size(0),
              "VarlenAttention: cu_k must run from 0 to ", k.size(0));
  torch::Tensor out = torch::empty(q.sizes(), q.options());
  for (size_t i = 0; i + 1 < cu_q.size(); ++i) {
    const int64_t q0 = cu_q[i], nq = cu_q[i + 1] - cu_q[i];
    const int64_t k0 = cu_k[i], nk = cu_k[i + 1] - cu_k[i];
    TORCH_CHECK(nq >= 0 && nk >= 0, "VarlenAttention: cu_seqlens decrease at ",
                i);
    if (nq == 0) continue;
    torch::Tensor qi = q.narrow(0, q0, nq);
    torch::Tensor ki = k.narrow(0, k0, nk);
    torch::Tensor vi = v.narrow(0, k0, nk);
    torch::Tensor oi;
#ifdef LVS_DIT_HAVE_SDPA
    if (options.allow_sdpa && q.is_cuda() && nk > 0) {
      oi = SdpaAttention(qi, ki, vi, scale);
    }
#endif
    if (!oi.defined()) oi = TiledAttention(qi, ki, vi, scale, options);
    out.narrow(0, q0, nq).copy_(oi);
  }
  return out;
}

}  // namespace lvs::dit
