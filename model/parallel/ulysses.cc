#include "model/parallel/ulysses.h"

namespace lvs::parallel {

torch::Tensor UlyssesAttention::ScatterHeads(const torch::Tensor& x) {
  const int64_t n = size(), l = x.size(0), h = x.size(1), d = x.size(2);
  TORCH_CHECK(h % n == 0, "Ulysses: ", h, " heads over ", n, " ranks");
  // [L, H, D] -> [L, N, H/N, D] -> [N, L, H/N, D]: block j to rank j.
  torch::Tensor send =
      x.reshape({l, n, h / n, d}).permute({1, 0, 2, 3}).contiguous();
  // [N (source rank), L, H/N, D] -> [N*L, H/N, D]: tokens in rank order.
  return comm_->AllToAll(send.view({n * l, h / n, d})).view({n * l, h / n, d});
}

torch::Tensor UlyssesAttention::GatherHeads(const torch::Tensor& x) {
  const int64_t n = size(), hl = x.size(1), d = x.size(2);
  const int64_t l = x.size(0) / n;
  // [N*L, H/N, D]: block j (rank j's tokens) goes back to rank j.
  torch::Tensor recv = comm_->AllToAll(x.contiguous());
  // [N (head group), L, H/N, D] -> [L, N, H/N, D] -> [L, H, D]
  return recv.view({n, l, hl, d}).permute({1, 0, 2, 3}).reshape({l, n * hl, d});
}

torch::Tensor UlyssesAttention::AllGatherTokens(const torch::Tensor& x) {
  return comm_->AllGather(x);
}

}  // namespace lvs::parallel
