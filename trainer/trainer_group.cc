// In-process data-parallel ranks.
#include "trainer/trainer_group.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#ifdef LVS_HAVE_C10D_GLOO
#include "trainer/data_parallel.h"
#endif

namespace lvs::trainer {

// A collective waits this long for the other ranks.
constexpr std::chrono::minutes kCollectiveTimeout{10};

torch::Device RankDevice(const std::string& device, int rank) {
  torch::Device d(device);
  if (!d.is_cuda()) return d;
  const int base = d.has_index() ? d.index() : 0;
  return torch::Device(torch::kCUDA,
                       static_cast<c10::DeviceIndex>(base + rank));
}

TrainerGroup::~TrainerGroup() = default;

absl::StatusOr<std::unique_ptr<TrainerGroup>> TrainerGroup::Create(
    const TrainSpec& spec, const std::string& device) {
  std::unique_ptr<TrainerGroup> group(new TrainerGroup());
  const int world = static_cast<int>(spec.data_parallel);
  torch::Device last = torch::kCPU;
  try {
    last = RankDevice(device, world - 1);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("device: \"", device, "\" is not a device"));
  }
  if (last.is_cuda() &&
      static_cast<int64_t>(torch::cuda::device_count()) <= last.index()) {
    return absl::FailedPreconditionError(
        absl::StrCat("data_parallel: ", world, " ranks from ", device, " need ",
                     last.str(), " but this trainer sees ",
                     torch::cuda::device_count(), " CUDA devices"));
  }
  if (world > 1) {
#ifdef LVS_HAVE_C10D_GLOO
    LVS_ASSIGN_OR_RETURN(
        group->reducers_,
        CreateLocalGroup(
            world, last.is_cuda() ? LocalBackend::kNccl : LocalBackend::kGloo,
            kCollectiveTimeout));
#else
    return absl::FailedPreconditionError(
        "data_parallel: this trainer was built without c10d; it runs jobs "
        "with data_parallel 1 only");
#endif
  }
  // Ranks are built one after the other: a fresh model draws its initial
  // weights from the global generator.
  for (int r = 0; r < world; ++r) {
    TrainerOptions options;
    options.device = RankDevice(device, r);
    options.reducer = world > 1 ? group->reducers_[r].get() : nullptr;
    LVS_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> tr,
                         Trainer::Create(spec, options));
    group->ranks_.push_back(std::move(tr));
  }
  return group;
}

absl::Status TrainerGroup::Resume(const std::string& checkpoint_dir) {
  for (auto& tr : ranks_) LVS_RETURN_IF_ERROR(tr->Resume(checkpoint_dir));
  return absl::OkStatus();
}

absl::StatusOr<StepStats> TrainerGroup::Step() {
  if (ranks_.size() == 1) return ranks_[0]->Step();
  std::vector<absl::StatusOr<StepStats>> results(ranks_.size());
  std::vector<std::thread> threads;
  for (size_t r = 1; r < ranks_.size(); ++r) {
    threads.emplace_back([&, r] { results[r] = ranks_[r]->Step(); });
  }
  results[0] = ranks_[0]->Step();
  for (std::thread& t : threads) t.join();
  for (size_t r = 0; r < results.size(); ++r) {
    if (!results[r].ok()) {
      return absl::Status(
          results[r].status().code(),
          absl::StrCat("rank ", r, ": ", results[r].status().message()));
    }
  }
  StepStats stats = *results[0];
  const double n = static_cast<double>(results.size());
  stats.loss = 0;
  for (auto& [task, loss] : stats.task_loss) loss = 0;
  for (const auto& r : results) {
    stats.loss += r->loss / n;
    stats.seconds = std::max(stats.seconds, r->seconds);
    for (const auto& [task, loss] : r->task_loss) {
      stats.task_loss[task] += loss / n;
    }
  }
  return stats;
}

absl::Status TrainerGroup::SaveCheckpoint(const std::string& dir) const {
  return ranks_[0]->SaveCheckpoint(dir);
}

}  // namespace lvs::trainer
