// The extra devices of a multi-device pipeline (lvs-worker --devices): DiT
// replicas and parallel runners per layout (model/parallel), and VAE
// replicas that decode a share of the spatial tiles. Rank 0 is the
// pipeline's own device and models; a CPU rank shares the rank-0 models
// (their forward is reentrant), a CUDA rank holds a copy of the weights.
// Replicas follow the rank-0 models: a reloaded DiT or another precision is
// copied again at the next request.
//
// Thread-safety: used by the pipeline's job thread only.
#ifndef LVS_MODEL_PIPELINE_DEVICE_GROUP_H_
#define LVS_MODEL_PIPELINE_DEVICE_GROUP_H_

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/dit/dit.h"
#include "model/parallel/parallel_dit.h"
#include "model/pipeline/step_cache.h"
#include "model/sampler/multi_cfg.h"
#include "model/vae/vae.h"

namespace lvs::pipeline {

class DeviceGroup {
 public:
  // `devices[0]` is the pipeline's device.
  explicit DeviceGroup(std::vector<torch::Device> devices)
      : devices_(std::move(devices)) {}

  int size() const { return static_cast<int>(devices_.size()); }
  const std::vector<torch::Device>& devices() const { return devices_; }

  // The layout a request with `guided` calls runs with on `dit`.
  parallel::ParallelLayout LayoutFor(const dit::MultiScaleNextDiT& dit,
                                     bool guided) const;

  // A velocity over the layout for `guided` (see ParallelDiT::Velocity).
  absl::StatusOr<sampler::VelocityFn> Velocity(
      const dit::MultiScaleNextDiT& dit, bool guided, double threshold,
      int64_t batch, int total_calls, std::shared_ptr<ForwardCounts> counts);

  // The VAEs of ranks 1.. (for CogVideoXVae::DecodeParallel).
  absl::StatusOr<std::vector<const vae::CogVideoXVae*>> VaeHelpers(
      const vae::CogVideoXVae& vae);

 private:
  absl::Status SyncDiT(const dit::MultiScaleNextDiT& dit);

  const std::vector<torch::Device> devices_;
  // The rank-0 DiT the replicas copy (held, so its address stays unique).
  dit::MultiScaleNextDiT dit_source_{nullptr};
  std::vector<dit::MultiScaleNextDiT> dits_;  // Per rank.
  std::map<std::string, std::unique_ptr<parallel::ParallelDiT>> runners_;
  const void* vae_source_ = nullptr;  // With its dtype: a reload changes it.
  torch::ScalarType vae_dtype_ = torch::kFloat32;
  std::vector<std::unique_ptr<vae::CogVideoXVae>> vae_copies_;
  std::vector<const vae::CogVideoXVae*> vae_helpers_;
};

}  // namespace lvs::pipeline

#endif  // LVS_MODEL_PIPELINE_DEVICE_GROUP_H_
