// Gradient reducers over the c10d groups of model/parallel: Gloo across
// processes or threads, NCCL across the threads of one process.
#include "trainer/data_parallel.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "model/parallel/communicator.h"

namespace lvs::trainer {
namespace {

// Averages through one all-reduce of a flat fp32 buffer.
class GroupReducer : public GradientReducer {
 public:
  explicit GroupReducer(std::unique_ptr<parallel::Communicator> comm)
      : comm_(std::move(comm)) {}

  int rank() const override { return comm_->rank(); }
  int world_size() const override { return comm_->size(); }

  absl::Status AllReduceMean(std::vector<torch::Tensor>& tensors) override {
    if (tensors.empty()) return absl::OkStatus();
    try {
      std::vector<torch::Tensor> flat_parts;
      for (const torch::Tensor& t : tensors) {
        flat_parts.push_back(t.to(torch::kFloat32).reshape({-1}));  // [n_i]
      }
      torch::Tensor flat = torch::cat(flat_parts);  // [sum n_i]
      comm_->AllReduceSum(flat);
      flat.div_(comm_->size());
      int64_t offset = 0;
      for (torch::Tensor& t : tensors) {
        const int64_t n = t.numel();
        t.copy_(flat.narrow(0, offset, n).view(t.sizes()));  // [n] -> t
        offset += n;
      }
      return absl::OkStatus();
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("gradient all-reduce failed: ", e.what()));
    }
  }

 private:
  std::unique_ptr<parallel::Communicator> comm_;
};

absl::Status Prefixed(const absl::Status& s, absl::string_view prefix) {
  return absl::Status(s.code(), absl::StrCat(prefix, s.message()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<GradientReducer>> JoinGlooGroup(
    const DataParallelOptions& o) {
  auto comm =
      parallel::JoinGlooGroup(o.host, o.port, o.rank, o.world_size, o.timeout);
  if (!comm.ok()) return Prefixed(comm.status(), "data parallel: ");
  return std::unique_ptr<GradientReducer>(new GroupReducer(*std::move(comm)));
}

absl::StatusOr<std::vector<std::unique_ptr<GradientReducer>>> CreateLocalGroup(
    int world_size, LocalBackend backend, std::chrono::milliseconds timeout) {
  auto group = parallel::CreateLocalGroup(world_size,
                                          backend == LocalBackend::kNccl
                                              ? parallel::Backend::kNccl
                                              : parallel::Backend::kGloo,
                                          timeout);
  if (!group.ok()) return Prefixed(group.status(), "data_parallel: ");
  std::vector<std::unique_ptr<GradientReducer>> ranks;
  for (auto& comm : *group) {
    ranks.push_back(std::make_unique<GroupReducer>(std::move(comm)));
  }
  return ranks;
}

}  // namespace lvs::trainer
