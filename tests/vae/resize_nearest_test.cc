// SpatialNorm's nearest resize of the latent equals F::interpolate (mode
// nearest) bit for bit, on the repetition path (power-of-two factors) and
// the fallback, in float32 and bf16.
#include <torch/torch.h>

#include <vector>

#include "gtest/gtest.h"
#include "model/vae/spatial_norm3d.h"

namespace lvs::vae {
namespace {

namespace F = torch::nn::functional;

TEST(ResizeNearest, EqualsInterpolate) {
  torch::manual_seed(5);
  const torch::Tensor z = torch::randn({2, 3, 3, 4, 5});
  const std::vector<std::vector<int64_t>> sizes = {
      {3, 4, 5}, {6, 8, 10}, {12, 32, 40}, {3, 16, 5}, {5, 12, 7}, {4, 6, 15}};
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    const torch::Tensor zd = z.to(dtype);
    for (const auto& s : sizes) {
      const torch::Tensor want = F::interpolate(
          zd, F::InterpolateFuncOptions().size(s).mode(torch::kNearest));
      const torch::Tensor got = ResizeNearest(zd, s[0], s[1], s[2]);
      EXPECT_TRUE(torch::equal(got, want))
          << s[0] << "x" << s[1] << "x" << s[2] << " " << dtype;
    }
  }
}

}  // namespace
}  // namespace lvs::vae
