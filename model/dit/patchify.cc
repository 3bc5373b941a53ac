#include "model/dit/patchify.h"

#include <torch/torch.h>

namespace lvs::dit {

torch::Tensor Patchify(const std::vector<torch::Tensor>& items,
                       const PatchComb& patch, PackedLayout* layout) {
  const int64_t p = patch.patch, pf = patch.f_patch;
  *layout = PackedLayout{};
  layout->cu_seqlens.push_back(0);
  std::vector<torch::Tensor> tokens;
  for (size_t i = 0; i < items.size(); ++i) {
    torch::Tensor x = items[i];
    TORCH_CHECK(x.dim() == 4, "Patchify: item ", i, " must be [C, F, H, W]");
    const int64_t c = x.size(0), f0 = x.size(1), h = x.size(2), w = x.size(3);
    if (f0 == 1 && pf > 1)
      x = x.repeat({1, pf, 1, 1});  // [C, 1, H, W] -> [C, pF, H, W]
    const int64_t f = x.size(1);
    TORCH_CHECK(f % pf == 0 && h % p == 0 && w % p == 0, "Patchify: item ", i,
                " [", c, ", ", f0, ", ", h, ", ", w, "] does not split into ",
                pf, "x", p, "x", p, " patches");
    const TokenGrid grid = {f / pf, h / p, w / p};
    // [C, F, H, W] -> [C, F/pF, pF, H/P, P, W/P, P]
    //   -> [F/pF, H/P, W/P, pF, P, P, C] -> [L_i, pF*P*P*C]
    tokens.push_back(
        x.reshape({c, grid[0], pf, grid[1], p, grid[2], p})
            .permute({1, 3, 5, 2, 4, 6, 0})
            .reshape({grid[0] * grid[1] * grid[2], pf * p * p * c}));
    layout->grids.push_back(grid);
    layout->frames.push_back(f0);
    layout->cu_seqlens.push_back(layout->cu_seqlens.back() +
                                 tokens.back().size(0));
  }
  return torch::cat(tokens, 0);
}

std::vector<torch::Tensor> Unpatchify(const torch::Tensor& tokens,
                                      const PackedLayout& layout,
                                      const PatchComb& patch) {
  const int64_t p = patch.patch, pf = patch.f_patch;
  const int64_t c = tokens.size(1) / (pf * p * p);
  std::vector<torch::Tensor> items;
  for (size_t i = 0; i < layout.grids.size(); ++i) {
    const TokenGrid& g = layout.grids[i];
    const int64_t start = layout.cu_seqlens[i];
    const int64_t n = layout.cu_seqlens[i + 1] - start;
    // [L_i, pF*P*P*C] -> [F/pF, H/P, W/P, pF, P, P, C]
    //   -> [C, F/pF, pF, H/P, P, W/P, P] -> [C, F, H, W]
    torch::Tensor x = tokens.narrow(0, start, n)
                          .reshape({g[0], g[1], g[2], pf, p, p, c})
                          .permute({6, 0, 3, 1, 4, 2, 5})
                          .reshape({c, g[0] * pf, g[1] * p, g[2] * p});
    items.push_back(
        x.narrow(1, 0, layout.frames[i]));  // Crops repeated images.
  }
  return items;
}

torch::Tensor SourceIds(const PackedLayout& layout, torch::Device device) {
  std::vector<torch::Tensor> ids;
  for (size_t i = 0; i + 1 < layout.cu_seqlens.size(); ++i) {
    ids.push_back(torch::full({layout.cu_seqlens[i + 1] - layout.cu_seqlens[i]},
                              static_cast<int64_t>(i), torch::kInt64));
  }
  return torch::cat(ids, 0).to(device);
}

}  // namespace lvs::dit
