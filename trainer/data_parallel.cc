// c10d gradient reducers: ProcessGroupGloo across processes or threads,
// ProcessGroupNCCL across the threads of one process.
#include "trainer/data_parallel.h"

#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef LVS_HAVE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <thread>

#include "absl/strings/str_cat.h"

namespace lvs::trainer {
namespace {

// Averages through one all-reduce of a flat fp32 buffer. `Group` is a c10d
// process group (ProcessGroupGloo or ProcessGroupNCCL); `stage_on_host`
// copies the buffer to the CPU first (Gloo with CUDA tensors).
template <typename Group>
class GroupReducer : public GradientReducer {
 public:
  GroupReducer(c10::intrusive_ptr<c10d::Store> store,
               c10::intrusive_ptr<Group> group, int rank, int world,
               bool stage_on_host)
      : store_(std::move(store)),
        group_(std::move(group)),
        rank_(rank),
        world_(world),
        stage_on_host_(stage_on_host) {}

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }

  absl::Status AllReduceMean(std::vector<torch::Tensor>& tensors) override {
    if (tensors.empty()) return absl::OkStatus();
    try {
      std::vector<torch::Tensor> flat_parts;
      for (const torch::Tensor& t : tensors) {
        flat_parts.push_back(t.to(torch::kFloat32).reshape({-1}));  // [n_i]
      }
      torch::Tensor flat = torch::cat(flat_parts);  // [sum n_i]
      std::vector<torch::Tensor> buffer = {
          stage_on_host_ && !flat.is_cpu() ? flat.cpu() : flat};
      group_->allreduce(buffer)->wait();
      buffer[0].div_(world_);
      const torch::Tensor sum = buffer[0].to(flat.device());
      int64_t offset = 0;
      for (torch::Tensor& t : tensors) {
        const int64_t n = t.numel();
        t.copy_(sum.narrow(0, offset, n).view(t.sizes()));  // [n] -> t
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
  c10::intrusive_ptr<Group> group_;
  int rank_, world_;
  bool stage_on_host_;
};

using GlooReducer = GroupReducer<c10d::ProcessGroupGloo>;

c10::intrusive_ptr<c10d::ProcessGroupGloo> MakeGloo(
    const c10::intrusive_ptr<c10d::Store>& store, const std::string& host,
    int rank, int world, std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  options->devices.push_back(
      c10d::ProcessGroupGloo::createDeviceForHostname(host));
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world,
                                                     options);
}

// Builds rank r's reducer on `store`; the group constructors block until
// every rank has joined, so each rank is built on its own thread.
std::unique_ptr<GradientReducer> MakeLocalRank(
    const c10::intrusive_ptr<c10d::Store>& store, int rank, int world,
    LocalBackend backend, std::chrono::milliseconds timeout) {
#ifdef LVS_HAVE_C10D_NCCL
  if (backend == LocalBackend::kNccl) {
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world,
                                                             options);
    return std::make_unique<GroupReducer<c10d::ProcessGroupNCCL>>(
        store, group, rank, world, /*stage_on_host=*/false);
  }
#endif
  (void)backend;
  return std::make_unique<GlooReducer>(
      store, MakeGloo(store, "127.0.0.1", rank, world, timeout), rank, world,
      /*stage_on_host=*/true);
}

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
    auto group = MakeGloo(store, o.host, o.rank, o.world_size, o.timeout);
    return std::unique_ptr<GradientReducer>(new GlooReducer(
        store, group, o.rank, o.world_size, /*stage_on_host=*/true));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("data parallel: rendezvous at ",
                                               o.host, ":", o.port,
                                               " failed: ", e.what()));
  }
}

absl::StatusOr<std::vector<std::unique_ptr<GradientReducer>>> CreateLocalGroup(
    int world_size, LocalBackend backend, std::chrono::milliseconds timeout) {
  if (world_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("data_parallel: ", world_size, " ranks"));
  }
#ifndef LVS_HAVE_C10D_NCCL
  if (backend == LocalBackend::kNccl) {
    return absl::FailedPreconditionError(
        "data_parallel: this trainer was built without NCCL; CUDA ranks "
        "cannot reduce gradients");
  }
#endif
  c10::intrusive_ptr<c10d::Store> store =
      c10::make_intrusive<c10d::HashStore>();
  store->setTimeout(timeout);
  std::vector<std::unique_ptr<GradientReducer>> ranks(world_size);
  std::vector<std::string> errors(world_size);
  std::vector<std::thread> threads;
  for (int r = 0; r < world_size; ++r) {
    threads.emplace_back([&, r] {
      try {
        ranks[r] = MakeLocalRank(store, r, world_size, backend, timeout);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int r = 0; r < world_size; ++r) {
    if (!ranks[r]) {
      return absl::UnavailableError(absl::StrCat(
          "data_parallel: rank ", r, " could not join: ", errors[r]));
    }
  }
  return ranks;
}

}  // namespace lvs::trainer
