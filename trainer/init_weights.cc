// Reference-style initial weights of a fresh DiT.
#include "trainer/init_weights.h"

#include <exception>

#include "absl/strings/match.h"
#include "model/common/torch_status.h"

namespace lvs::trainer {

InitRule InitRuleFor(const std::string& name, int64_t dims) {
  // adaLN-Zero: every block's and final layer's modulation, the final
  // projection, the cross-attention gates and the caption projection.
  if (absl::StrContains(name, "adaLN_modulation.") ||
      absl::StrContains(name, "final_layer") ||
      absl::EndsWith(name, "attention.gate") ||
      absl::StartsWith(name, "cap_embedder.1.")) {
    return InitRule::kZeros;
  }
  if (name == "pad_token") return InitRule::kNormal002;
  if (absl::StartsWith(name, "t_embedder.") ||
      absl::StartsWith(name, "motion_embedder.")) {
    return absl::EndsWith(name, ".weight") ? InitRule::kNormal002
                                           : InitRule::kZeros;
  }
  if (dims == 1) {
    return absl::EndsWith(name, ".bias") ? InitRule::kZeros : InitRule::kOnes;
  }
  return InitRule::kXavierUniform;
}

absl::Status InitializeLikeReference(dit::MultiScaleNextDiT& model) {
  try {
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters(/*recurse=*/true)) {
      torch::Tensor w = p.value();
      switch (InitRuleFor(p.key(), w.dim())) {
        case InitRule::kZeros:
          w.zero_();
          break;
        case InitRule::kOnes:
          w.fill_(1.0);
          break;
        case InitRule::kNormal002:
          w.normal_(0.0, 0.02);
          break;
        case InitRule::kXavierUniform:
          torch::nn::init::xavier_uniform_(w);
          break;
      }
    }
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e, "initialising the DiT");
  }
  return absl::OkStatus();
}

}  // namespace lvs::trainer
