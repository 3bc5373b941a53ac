#include "model/dit/rope.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

namespace lvs::dit {
namespace {

// Rotates contiguous x [L, H, D] on the CPU into out (same shape): per pair
// (a, b) = (x[2k], x[2k+1]) and angle (c, s) of the token, out = (a*c - b*s,
// a*s + b*c) in float32, rounded once to T. The reference's complex product
// without the pair gathers and temporaries of the tensor version.
template <typename T>
void RopeCpu(const T* x, const float* cos, const float* sin, T* out, int64_t l,
             int64_t h, int64_t d) {
  const int64_t half = d / 2;
  at::parallel_for(0, l, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const float* c = cos + t * half;
      const float* s = sin + t * half;
      for (int64_t head = 0; head < h; ++head) {
        const T* xi = x + (t * h + head) * d;
        T* oi = out + (t * h + head) * d;
        for (int64_t k = 0; k < half; ++k) {
          const float a = static_cast<float>(xi[2 * k]);
          const float b = static_cast<float>(xi[2 * k + 1]);
          const float ac = a * c[k], bs = b * s[k];
          const float as = a * s[k], bc = b * c[k];
          oi[2 * k] = static_cast<T>(ac - bs);
          oi[2 * k + 1] = static_cast<T>(as + bc);
        }
      }
    }
  });
}

// Angles of positions 0..n-1 along one axis of width `dim`: float32 [n, dim/2].
torch::Tensor AxisAngles(int64_t n, int64_t dim, double theta) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor k = torch::arange(0, dim, 2, f64).slice(0, 0, dim / 2);
  torch::Tensor omega = 1.0 / torch::pow(theta, k / static_cast<double>(dim));
  torch::Tensor pos = torch::arange(n, f64);
  return torch::outer(pos, omega).to(torch::kFloat32);
}

}  // namespace

RopeTable ComputeRope(const std::vector<TokenGrid>& grids,
                      const std::array<int64_t, 3>& axes_dims,
                      const std::array<int64_t, 3>& axes_max_len, double theta,
                      torch::Device device) {
  TokenGrid extent = {0, 0, 0};
  for (const TokenGrid& g : grids) {
    for (int a = 0; a < 3; ++a) {
      TORCH_CHECK(g[a] <= axes_max_len[a], "RoPE: ", g[a],
                  " patches along axis ", a,
                  " (time, height, width) exceed the "
                  "limit of ",
                  axes_max_len[a]);
      extent[a] = std::max(extent[a], g[a]);
    }
  }
  std::array<torch::Tensor, 3> axis;
  for (int a = 0; a < 3; ++a)
    axis[a] = AxisAngles(extent[a], axes_dims[a], theta);
  std::vector<torch::Tensor> parts;
  for (const TokenGrid& g : grids) {
    const int64_t f = g[0], h = g[1], w = g[2];
    // [f, dt] -> [f, h, w, dt]; [h, dh] -> [f, h, w, dh]; [w, dw] -> [f, h, w,
    // dw]
    torch::Tensor tf =
        axis[0].narrow(0, 0, f).view({f, 1, 1, -1}).expand({f, h, w, -1});
    torch::Tensor th =
        axis[1].narrow(0, 0, h).view({1, h, 1, -1}).expand({f, h, w, -1});
    torch::Tensor tw =
        axis[2].narrow(0, 0, w).view({1, 1, w, -1}).expand({f, h, w, -1});
    // [f, h, w, D/2] -> [f*h*w, D/2]
    parts.push_back(torch::cat({tf, th, tw}, -1).reshape({f * h * w, -1}));
  }
  torch::Tensor angles = torch::cat(parts, 0).to(device);
  return RopeTable{angles.cos(), angles.sin()};
}

torch::Tensor ApplyRope(const torch::Tensor& x, const RopeTable& rope) {
  const int64_t l = x.size(0), h = x.size(1), d = x.size(2);
  if (x.device().is_cpu() && rope.cos.device().is_cpu() &&
      rope.cos.scalar_type() == torch::kFloat32 &&
      (x.scalar_type() == torch::kFloat32 ||
       x.scalar_type() == torch::kBFloat16)) {
    const torch::Tensor xc = x.contiguous();
    const torch::Tensor c = rope.cos.contiguous(), s = rope.sin.contiguous();
    TORCH_CHECK(c.size(0) == l && c.size(1) == d / 2 && d % 2 == 0,
                "ApplyRope: table [", c.size(0), ", ", c.size(1),
                "] does not fit x [", l, ", ", h, ", ", d, "]");
    torch::Tensor out = torch::empty_like(xc);
    if (x.scalar_type() == torch::kFloat32) {
      RopeCpu(xc.data_ptr<float>(), c.data_ptr<float>(), s.data_ptr<float>(),
              out.data_ptr<float>(), l, h, d);
    } else {
      RopeCpu(xc.data_ptr<c10::BFloat16>(), c.data_ptr<float>(),
              s.data_ptr<float>(), out.data_ptr<c10::BFloat16>(), l, h, d);
    }
    return out;
  }
  // [L, H, D] -> [L, H, D/2, 2]
  torch::Tensor xf = x.to(torch::kFloat32).reshape({l, h, d / 2, 2});
  torch::Tensor re = xf.select(-1, 0), im = xf.select(-1, 1);  // [L, H, D/2]
  torch::Tensor c = rope.cos.unsqueeze(1),
                s = rope.sin.unsqueeze(1);  // [L, 1, D/2]
  torch::Tensor out_re = re * c - im * s;
  torch::Tensor out_im = re * s + im * c;
  // 2 x [L, H, D/2] -> [L, H, D/2, 2] -> [L, H, D]
  return torch::stack({out_re, out_im}, -1).view({l, h, d}).to(x.scalar_type());
}

}  // namespace lvs::dit
