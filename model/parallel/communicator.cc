#include "model/parallel/communicator.h"

#ifdef LVS_HAVE_C10D_GLOO
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef LVS_HAVE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"

namespace lvs::parallel {

bool HasBackend(Backend backend) {
#ifdef LVS_HAVE_C10D_NCCL
  if (backend == Backend::kNccl) return true;
#endif
#ifdef LVS_HAVE_C10D_GLOO
  if (backend == Backend::kGloo) return true;
#endif
  (void)backend;
  return false;
}

#ifdef LVS_HAVE_C10D_GLOO
namespace {

// `Group` is ProcessGroupGloo or ProcessGroupNCCL; `stage_on_host` copies
// CUDA tensors to the CPU around each collective (Gloo).
template <typename Group>
class GroupCommunicator : public Communicator {
 public:
  GroupCommunicator(c10::intrusive_ptr<c10d::Store> store,
                    c10::intrusive_ptr<Group> group, int rank, int size,
                    Backend backend)
      : store_(std::move(store)),
        group_(std::move(group)),
        rank_(rank),
        size_(size),
        backend_(backend) {}

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Backend backend() const override { return backend_; }

  void AllReduceSum(torch::Tensor& tensor) override {
    std::vector<torch::Tensor> buffer = {Staged(tensor)};
    group_->allreduce(buffer)->wait();
    if (!buffer[0].is_same(tensor)) tensor.copy_(buffer[0]);
  }

  torch::Tensor AllToAll(const torch::Tensor& input) override {
    TORCH_CHECK(input.size(0) % size_ == 0, "all-to-all: ", input.size(0),
                " rows do not split over ", size_, " ranks");
    torch::Tensor in = Staged(input);
    torch::Tensor out = torch::empty_like(in);
    std::vector<int64_t> splits;  // Equal splits.
    group_->alltoall_base(out, in, splits, splits)->wait();
    return out.to(input.device());
  }

  torch::Tensor AllGather(const torch::Tensor& input) override {
    torch::Tensor in = Staged(input);
    std::vector<std::vector<torch::Tensor>> out(1);
    for (int r = 0; r < size_; ++r) out[0].push_back(torch::empty_like(in));
    std::vector<torch::Tensor> inputs = {in};
    group_->allgather(out, inputs)->wait();
    return torch::cat(out[0], 0).to(input.device());
  }

 private:
  torch::Tensor Staged(const torch::Tensor& t) const {
    torch::Tensor c = t.contiguous();
    return backend_ == Backend::kGloo && !c.is_cpu() ? c.cpu() : c;
  }

  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<Group> group_;
  const int rank_, size_;
  const Backend backend_;
};

c10::intrusive_ptr<c10d::ProcessGroupGloo> MakeGloo(
    const c10::intrusive_ptr<c10d::Store>& store, const std::string& host,
    int rank, int size, std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  options->devices.push_back(
      c10d::ProcessGroupGloo::createDeviceForHostname(host));
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size,
                                                     options);
}

// Builds rank r on `store`; the group constructors block until every rank
// has joined, so each rank is built on its own thread.
std::unique_ptr<Communicator> MakeLocalRank(
    const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
    Backend backend, std::chrono::milliseconds timeout) {
#ifdef LVS_HAVE_C10D_NCCL
  if (backend == Backend::kNccl) {
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    auto group =
        c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
    return std::make_unique<GroupCommunicator<c10d::ProcessGroupNCCL>>(
        store, group, rank, size, Backend::kNccl);
  }
#endif
  (void)backend;
  return std::make_unique<GroupCommunicator<c10d::ProcessGroupGloo>>(
      store, MakeGloo(store, "127.0.0.1", rank, size, timeout), rank, size,
      Backend::kGloo);
}

}  // namespace
#endif  // LVS_HAVE_C10D_GLOO

absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> CreateLocalGroup(
    int size, Backend backend, std::chrono::milliseconds timeout) {
  if (size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("process group: ", size, " ranks"));
  }
  if (!HasBackend(backend)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "process group: this build has no c10d ",
        backend == Backend::kNccl ? "NCCL" : "Gloo",
        backend == Backend::kNccl ? "; CUDA ranks cannot communicate"
                                  : " (LibTorch c10d and libgloo-dev)"));
  }
#ifdef LVS_HAVE_C10D_GLOO
  c10::intrusive_ptr<c10d::Store> store =
      c10::make_intrusive<c10d::HashStore>();
  store->setTimeout(timeout);
  std::vector<std::unique_ptr<Communicator>> ranks(size);
  std::vector<std::string> errors(size);
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) {
    threads.emplace_back([&, r] {
      try {
        ranks[r] = MakeLocalRank(store, r, size, backend, timeout);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int r = 0; r < size; ++r) {
    if (!ranks[r]) {
      return absl::UnavailableError(absl::StrCat(
          "process group: rank ", r, " could not join: ", errors[r]));
    }
  }
  return ranks;
#else
  (void)timeout;
  return absl::FailedPreconditionError("process group: no c10d");
#endif
}

absl::StatusOr<std::unique_ptr<Communicator>> JoinGlooGroup(
    const std::string& host, uint16_t port, int rank, int size,
    std::chrono::milliseconds timeout) {
  if (size <= 0 || rank < 0 || rank >= size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "process group: rank ", rank, " is not in [0, ", size, ")"));
  }
#ifdef LVS_HAVE_C10D_GLOO
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = port;
    store_options.isServer = rank == 0;
    store_options.numWorkers = size;
    store_options.waitWorkers = true;
    store_options.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(host, store_options);
    auto group = MakeGloo(store, host, rank, size, timeout);
    return std::unique_ptr<Communicator>(
        new GroupCommunicator<c10d::ProcessGroupGloo>(store, group, rank, size,
                                                      Backend::kGloo));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("process group: rendezvous at ",
                                               host, ":", port,
                                               " failed: ", e.what()));
  }
#else
  (void)host;
  (void)port;
  (void)timeout;
  return absl::FailedPreconditionError("process group: no c10d Gloo");
#endif
}

}  // namespace lvs::parallel
