// Matrix products of bfloat16 operands with float32 results on the CPU, as
// flash attention computes its scores (bf16 inputs, float32 accumulation,
// no rounding of the result). LibTorch 1.13 has no such product (its bf16
// matmul rounds the result to bf16); this one goes to oneDNN's matmul
// primitive (AMX / AVX512-BF16 brgemm kernels) when the build found oneDNN's
// headers and the CPU has native bf16 instructions.
//
// Thread-safety: safe to call concurrently (oneDNN primitives are immutable;
// each call uses its own stream). Runs on LibTorch's OpenMP threads.
#ifndef LVS_MODEL_COMMON_BF16_GEMM_H_
#define LVS_MODEL_COMMON_BF16_GEMM_H_

#include <torch/types.h>

namespace lvs::common {

// Whether GemmBf16F32 is available: built with oneDNN and the CPU has
// AVX512-BF16 or AMX-BF16 (elsewhere oneDNN would emulate bf16 slowly).
bool HaveBf16F32Gemm();

// c = a * b (+ c when `accumulate`), a [M, K] and b [K, N] bfloat16 CPU
// matrices with unit stride in one dimension each (e.g. a transposed view),
// c a float32 [M, N] CPU matrix with unit column stride.
// REQUIRES: HaveBf16F32Gemm(); shapes and dtypes as above (TORCH_CHECK).
void GemmBf16F32(const torch::Tensor& a, const torch::Tensor& b,
                 torch::Tensor& c, bool accumulate);

}  // namespace lvs::common

#endif  // LVS_MODEL_COMMON_BF16_GEMM_H_
