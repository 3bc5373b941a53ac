#include "model/common/bf16_gemm.h"

#include <torch/torch.h>

#include "model/common/cpu_runtime.h"

#ifdef LVS_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace lvs::common {

#ifdef LVS_HAVE_DNNL
namespace {

dnnl::engine& CpuEngine() {
  static dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

// [rows, cols] matrix of `t` with its strides.
dnnl::memory::desc MatrixDesc(const torch::Tensor& t,
                              dnnl::memory::data_type type) {
  return dnnl::memory::desc({t.size(0), t.size(1)}, type,
                            {t.stride(0), t.stride(1)});
}

bool UnitStrideMatrix(const torch::Tensor& t) {
  return t.dim() == 2 && (t.stride(1) == 1 || t.stride(0) == 1);
}

}  // namespace

bool HaveBf16F32Gemm() {
  static const bool have = CpuHasAvx512Bf16() || CpuHasAmxBf16();
  return have;
}

void GemmBf16F32(const torch::Tensor& a, const torch::Tensor& b,
                 torch::Tensor& c, bool accumulate) {
  TORCH_CHECK(HaveBf16F32Gemm(), "GemmBf16F32: no native bf16 oneDNN matmul");
  TORCH_CHECK(a.scalar_type() == torch::kBFloat16 &&
                  b.scalar_type() == torch::kBFloat16 &&
                  c.scalar_type() == torch::kFloat32,
              "GemmBf16F32: a and b must be bfloat16, c float32");
  TORCH_CHECK(a.device().is_cpu() && b.device().is_cpu() && c.device().is_cpu(),
              "GemmBf16F32: CPU tensors only");
  TORCH_CHECK(UnitStrideMatrix(a) && UnitStrideMatrix(b) && c.dim() == 2 &&
                  c.stride(1) == 1,
              "GemmBf16F32: matrices need a unit stride");
  TORCH_CHECK(a.size(1) == b.size(0) && c.size(0) == a.size(0) &&
                  c.size(1) == b.size(1),
              "GemmBf16F32: shapes [", a.size(0), ", ", a.size(1), "] x [",
              b.size(0), ", ", b.size(1), "] -> [", c.size(0), ", ", c.size(1),
              "] do not fit");
  if (c.numel() == 0) return;
  if (a.size(1) == 0) {
    if (!accumulate) c.zero_();
    return;
  }
  using dt = dnnl::memory::data_type;
  try {
    dnnl::engine& engine = CpuEngine();
    const dnnl::memory::desc a_md = MatrixDesc(a, dt::bf16);
    const dnnl::memory::desc b_md = MatrixDesc(b, dt::bf16);
    const dnnl::memory::desc c_md = MatrixDesc(c, dt::f32);
    dnnl::primitive_attr attr;
    if (accumulate) {
      dnnl::post_ops ops;
      ops.append_sum(1.0f);
      attr.set_post_ops(ops);
    }
#if DNNL_VERSION_MAJOR >= 3
    dnnl::matmul::primitive_desc pd(engine, a_md, b_md, c_md, attr);
#else
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), attr,
                                    engine);
#endif
    // Repeated shapes come from oneDNN's primitive cache.
    dnnl::matmul prim(pd);
    dnnl::stream stream(engine);
    dnnl::memory a_mem(a_md, engine, const_cast<void*>(a.data_ptr()));
    dnnl::memory b_mem(b_md, engine, const_cast<void*>(b.data_ptr()));
    dnnl::memory c_mem(c_md, engine, c.data_ptr());
    prim.execute(stream, {{DNNL_ARG_SRC, a_mem},
                          {DNNL_ARG_WEIGHTS, b_mem},
                          {DNNL_ARG_DST, c_mem}});
    stream.wait();
  } catch (const dnnl::error& e) {
    TORCH_CHECK(false, "GemmBf16F32: oneDNN: ", e.what());
  }
}

#else  // !LVS_HAVE_DNNL

bool HaveBf16F32Gemm() { return false; }

void GemmBf16F32(const torch::Tensor&, const torch::Tensor&, torch::Tensor&,
                 bool) {
  TORCH_CHECK(false, "GemmBf16F32: built without oneDNN");
}

#endif  // LVS_HAVE_DNNL

}  // namespace lvs::common
