// ProcessGroupGloo gradient reducer.
#include "trainer/data_parallel.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "absl/strings/str_cat.h"

namespace lvs::trainer {
namespace {

class GlooReducer : public GradientReducer {
 public:
  GlooReducer(c10::intrusive_ptr<c10d::Store> store,
              c10::intrusive_ptr<c10d::ProcessGroupGloo> group, int rank,
              int world)
      : store_(std::move(store)),
        group_(std::move(group)),
        rank_(rank),
        world_(world) {}

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }

  absl::Status AllReduceMean(std::vector<torch::Tensor>& tensors) override {
    if (tensors.empty()) return absl::OkStatus();
    try {
      std::vector<torch::Tensor> flat_parts;
      for (const torch::Tensor& t : tensors) {
        flat_parts.push_back(t.to(torch::kFloat32).reshape({-1}));  // [n_i]
      }
      std::vector<torch::Tensor> buffer = {torch::cat(flat_parts)};
      group_->allreduce(buffer)->wait();
      buffer[0].div_(world_);
      int64_t offset = 0;
      for (torch::Tensor& t : tensors) {
        const int64_t n = t.numel();
        t.copy_(buffer[0].narrow(0, offset, n).view(t.sizes()));  // [n] -> t
        offset += n;
      }
      return absl::OkStatus();
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("gradient all-reduce failed: ", e.what()));
    }
  }

 private:
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
  int rank_, world_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<GradientReducer>> JoinGlooGroup(
    const DataParallelOptions& o) {
  if (o.world_size <= 0 || o.rank < 0 || o.rank >= o.world_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data parallel: rank ", o.rank, " is not in [0, ", o.world_size, ")"));
  }
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = o.port;
    store_options.isServer = o.rank == 0;
    store_options.numWorkers = o.world_size;
    store_options.waitWorkers = true;
    store_options.timeout = o.timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(o.host, store_options);
    auto options = c10d::ProcessGroupGloo::Options::create(o.timeout);
    options->devices.push_back(
        c10d::ProcessGroupGloo::createDeviceForHostname(o.host));
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(
        store, o.rank, o.world_size, options);
    return std::unique_ptr<GradientReducer>(
        new GlooReducer(store, group, o.rank, o.world_size));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("data parallel: rendezvous at ",
                                               o.host, ":", o.port,
                                               " failed: ", e.what()));
  }
}

}  // namespace lvs::trainer
