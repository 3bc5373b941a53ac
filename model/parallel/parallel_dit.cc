#include "model/parallel/parallel_dit.h"

#include <c10/core/DeviceGuard.h>

#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace lvs::parallel {

std::string ParallelLayout::ToString() const {
  return absl::StrCat("cfg", cfg, "xsp", sp);
}

ParallelLayout ChooseLayout(int devices, int64_t n_heads, bool guided) {
  ParallelLayout layout;
  if (devices < 1) return layout;
  if (guided && devices % 2 == 0) layout.cfg = 2;
  for (int sp = devices / layout.cfg; sp >= 1; --sp) {
    if ((devices / layout.cfg) % sp == 0 && n_heads % sp == 0) {
      layout.sp = sp;
      break;
    }
  }
  return layout;
}

struct ParallelDiT::Run {
  std::vector<pipeline::StepCache> caches;  // Per rank.
  int calls = 0;
  int64_t batch = 0;
  int total_calls = 0;
};

absl::StatusOr<std::unique_ptr<ParallelDiT>> ParallelDiT::Create(
    std::vector<dit::MultiScaleNextDiT> replicas,
    std::vector<torch::Device> devices, ParallelLayout layout,
    std::chrono::milliseconds timeout) {
  const int n = layout.ranks();
  if (layout.cfg < 1 || layout.cfg > 2 || layout.sp < 1 ||
      static_cast<int>(replicas.size()) != n ||
      static_cast<int>(devices.size()) != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("parallel DiT: layout ", layout.ToString(), " needs ", n,
                     " replicas and devices, got ", replicas.size(), " and ",
                     devices.size()));
  }
  const int64_t heads = replicas[0]->config().n_heads;
  if (heads % layout.sp != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parallel DiT: ", heads,
        " heads do not split over sequence-parallel degree ", layout.sp));
  }
  std::unique_ptr<ParallelDiT> p(new ParallelDiT());
  p->layout_ = layout;
  p->replicas_ = std::move(replicas);
  p->devices_ = std::move(devices);
  if (layout.sp > 1) {
    for (int g = 0; g < layout.cfg; ++g) {
      bool all_cuda = true;
      for (int s = 0; s < layout.sp; ++s) {
        all_cuda = all_cuda && p->devices_[g * layout.sp + s].is_cuda();
      }
      const Backend backend = all_cuda && HasBackend(Backend::kNccl)
                                  ? Backend::kNccl
                                  : Backend::kGloo;
      LVS_ASSIGN_OR_RETURN(auto group,
                           CreateLocalGroup(layout.sp, backend, timeout));
      for (auto& comm : group) {
        p->sp_.push_back(std::make_unique<UlyssesAttention>(comm.get()));
        p->comms_.push_back(std::move(comm));
      }
    }
  }
  return p;
}

sampler::VelocityFn ParallelDiT::Velocity(
    double threshold, int64_t batch, int total_calls,
    std::shared_ptr<pipeline::ForwardCounts> counts) {
  auto run = std::make_shared<Run>();
  for (int r = 0; r < layout_.ranks(); ++r) run->caches.emplace_back(threshold);
  run->batch = batch;
  run->total_calls = total_calls;
  return [this, run, counts](
             const torch::Tensor& x, const torch::Tensor& t,
             const torch::Tensor& cap_feats, const torch::Tensor& cap_mask,
             const torch::Tensor& motion_score,
             const sampler::PatchComb& patch) -> absl::StatusOr<torch::Tensor> {
    absl::StatusOr<torch::Tensor> v =
        Call(*run, x, t, cap_feats, cap_mask, motion_score, patch);
    if (counts) {
      *counts = {};
      for (int g = 0; g < layout_.cfg; ++g) {
        const pipeline::ForwardCounts& c = run->caches[g * layout_.sp].counts();
        counts->computed += c.computed;
        counts->cached += c.cached;
      }
    }
    return v;
  };
}

absl::StatusOr<torch::Tensor> ParallelDiT::Call(
    Run& run, const torch::Tensor& x, const torch::Tensor& t,
    const torch::Tensor& cap_feats, const torch::Tensor& cap_mask,
    const torch::Tensor& motion_score, const sampler::PatchComb& patch) {
  const int index = run.calls++;
  const bool edge = index == 0 || index + 1 >= run.total_calls;
  const bool guided = x.dim() == 5 && x.size(0) == 2 * run.batch;
  // CFG groups that run and the rows each takes.
  const int groups = guided && layout_.cfg == 2 ? 2 : 1;
  const int64_t rows = x.size(0) / groups;
  const int branches = guided && groups == 1 ? 2 : 1;
  const int active = groups * layout_.sp;
  for (int r = active; r < layout_.ranks(); ++r) {
    run.caches[r].Reset();  // Idle this call: its branch phase ended.
  }
  std::vector<absl::StatusOr<torch::Tensor>> out(
      active, absl::UnknownError("rank did not run"));
  auto rank_main = [&](int r) {
    const int g = r / layout_.sp;
    const torch::Device device = devices_[r];
    c10::DeviceGuard guard(device);
    auto rows_of = [&](const torch::Tensor& v) {
      return v.narrow(0, g * rows, rows).to(device);
    };
    out[r] = run.caches[r].Forward(
        replicas_[r], rows_of(x), rows_of(t), rows_of(cap_feats),
        rows_of(cap_mask), rows_of(motion_score), patch, branches, guided, edge,
        layout_.sp > 1 ? sp_[r].get() : nullptr);
  };
  if (active == 1) {
    rank_main(0);
  } else {
    std::vector<std::thread> threads;
    for (int r = 0; r < active; ++r) threads.emplace_back(rank_main, r);
    for (std::thread& th : threads) th.join();
  }
  std::vector<torch::Tensor> parts;
  for (int g = 0; g < groups; ++g) {
    for (int s = 0; s < layout_.sp; ++s) {
      if (!out[g * layout_.sp + s].ok())
        return out[g * layout_.sp + s].status();
    }
    parts.push_back(out[g * layout_.sp]->to(x.device()));
  }
  return groups == 1 ? parts[0] : torch::cat(parts, 0);
}

}  // namespace lvs::parallel
