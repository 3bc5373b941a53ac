// Flow-matching time sampling and loss.
#include "trainer/flow_matching.h"

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace lvs::trainer {

float SampleTime(const std::string& snr_type, double shift,
                 at::Generator& gen) {
  torch::Tensor t;
  if (snr_type == "lognorm") {
    t = torch::sigmoid(at::randn({1}, gen, torch::kFloat32));
  } else {
    double a = 0, b = 1;
    std::vector<std::string> parts = absl::StrSplit(snr_type, '_');
    if (parts.size() == 3) {
      (void)absl::SimpleAtod(parts[1], &a);
      (void)absl::SimpleAtod(parts[2], &b);
    }
    t = at::rand({1}, gen, torch::kFloat32) * (b - a) + a;
  }
  if (shift != 1.0) t = t / (t + shift - shift * t);
  return t.item<float>();
}

torch::Tensor FlowMatchingLoss(dit::MultiScaleNextDiT& model,
                               const FlowBatch& batch, int64_t patch_size,
                               int64_t f_patch_size, double vd_weight) {
  const int64_t n = static_cast<int64_t>(batch.x1.size());
  std::vector<torch::Tensor> xt(n), target(n);
  for (int64_t i = 0; i < n; ++i) {
    const torch::Tensor t = batch.t[i];
    xt[i] = t * batch.x1[i] + (1 - t) * batch.x0[i];
    target[i] = batch.x1[i] - batch.x0[i];
  }
  std::vector<torch::Tensor> out =
      model->forward_list(xt, batch.t, batch.cap_feats, batch.cap_mask,
                          batch.motion, patch_size, f_patch_size);
  std::vector<torch::Tensor> losses(n);
  for (int64_t i = 0; i < n; ++i) {
    const torch::Tensor o = out[i].to(torch::kFloat32);
    losses[i] = (o - target[i]).pow(2).mean();
    if (vd_weight > 0) {
      const torch::Tensor cos = torch::cosine_similarity(
          o.reshape({1, -1}), target[i].reshape({1, -1}), 1);  // [C*F*H*W]
      losses[i] = losses[i] + vd_weight * (1 - cos.squeeze(0));
    }
  }
  return torch::stack(losses);
}

}  // namespace lvs::trainer
