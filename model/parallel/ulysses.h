// Ulysses sequence parallelism for the DiT's attention over a Communicator:
// each rank holds an equal share of the packed tokens; around the attention
// kernels one all-to-all per tensor trades tokens for heads (q, k, v: tokens
// -> heads; the output: heads -> tokens). Caption tokens are replicated.
//
// Thread-safety: as the Communicator (one thread per rank).
#ifndef LVS_MODEL_PARALLEL_ULYSSES_H_
#define LVS_MODEL_PARALLEL_ULYSSES_H_

#include "model/dit/attention.h"
#include "model/parallel/communicator.h"

namespace lvs::parallel {

class UlyssesAttention : public dit::AttentionParallel {
 public:
  // `comm` (not owned) outlives this object.
  explicit UlyssesAttention(Communicator* comm) : comm_(comm) {}

  int rank() const override { return comm_->rank(); }
  int size() const override { return comm_->size(); }
  torch::Tensor ScatterHeads(const torch::Tensor& x) override;
  torch::Tensor GatherHeads(const torch::Tensor& x) override;
  torch::Tensor AllGatherTokens(const torch::Tensor& x) override;
  void AllReduceSum(torch::Tensor& x) override { comm_->AllReduceSum(x); }

 private:
  Communicator* comm_;
};

}  // namespace lvs::parallel

#endif  // LVS_MODEL_PARALLEL_ULYSSES_H_
