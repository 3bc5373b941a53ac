#include "model/vae/tiling.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace lvs::vae {
namespace {

// Linear blend of the last `extent` rows (dim) of `a` into the first rows of
// `b`, in place: b[y] = a[-extent + y] * (1 - y/extent) + b[y] * (y/extent).
void Blend(const torch::Tensor& a, torch::Tensor& b, int64_t dim,
           int64_t extent) {
  extent = std::min({a.size(dim), b.size(dim), extent});
  if (extent <= 0) return;
  torch::Tensor w =
      torch::arange(
          extent,
          torch::TensorOptions().dtype(torch::kFloat64).device(b.device())) /
      static_cast<double>(extent);
  std::vector<int64_t> shape(b.dim(), 1);
  shape[dim] = extent;
  // [extent] -> broadcastable along `dim`
  torch::Tensor wb = w.to(torch::kFloat32).view(shape);
  torch::Tensor wa = (1.0 - w).to(torch::kFloat32).view(shape);
  torch::Tensor head = b.narrow(dim, 0, extent);
  torch::Tensor tail = a.narrow(dim, a.size(dim) - extent, extent);
  head.copy_(tail.to(torch::kFloat32) * wa + head.to(torch::kFloat32) * wb);
}

std::vector<int64_t> Starts(int64_t size, int64_t stride) {
  std::vector<int64_t> starts;
  for (int64_t s = 0; s < size; s += stride) starts.push_back(s);
  return starts;
}

}  // namespace

absl::StatusOr<TileGrid> PlanTiles(const TilingOptions& o, const VaeConfig& c,
                                   int64_t height, int64_t width) {
  const int64_t s = c.SpatialCompressionRatio();
  const int64_t px_h =
      o.tile_sample_height > 0 ? o.tile_sample_height : c.sample_height / 2;
  const int64_t px_w =
      o.tile_sample_width > 0 ? o.tile_sample_width : c.sample_width / 2;
  if (!(o.overlap_height >= 0 && o.overlap_height < 1 && o.overlap_width >= 0 &&
        o.overlap_width < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tiling: overlaps must lie in [0, 1), got ",
                     o.overlap_height, " and ", o.overlap_width));
  }
  TileGrid g;
  g.tile_h = px_h / s;
  g.tile_w = px_w / s;
  const int64_t stride_h =
      static_cast<int64_t>(g.tile_h * (1 - o.overlap_height));
  const int64_t stride_w =
      static_cast<int64_t>(g.tile_w * (1 - o.overlap_width));
  if (stride_h < 1 || stride_w < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tiling: a tile of ", px_h, " x ", px_w, " px with overlaps ",
        o.overlap_height, " / ", o.overlap_width,
        " leaves a stride below one latent (spatial factor ", s, ")"));
  }
  g.keep_h = stride_h * s;
  g.keep_w = stride_w * s;
  g.blend_h = g.tile_h * s - g.keep_h;
  g.blend_w = g.tile_w * s - g.keep_w;
  const bool tiled = height > g.tile_h || width > g.tile_w;
  g.row_starts = tiled ? Starts(height, stride_h) : std::vector<int64_t>{0};
  g.col_starts = tiled ? Starts(width, stride_w) : std::vector<int64_t>{0};
  if (!tiled) {
    g.tile_h = height;
    g.tile_w = width;
  }
  return g;
}

torch::Tensor BlendAndStitch(std::vector<std::vector<torch::Tensor>>& tiles,
                             const TileGrid& grid) {
  std::vector<torch::Tensor> rows;
  for (size_t r = 0; r < tiles.size(); ++r) {
    std::vector<torch::Tensor> kept;
    for (size_t c = 0; c < tiles[r].size(); ++c) {
      torch::Tensor& tile = tiles[r][c];
      if (r > 0) Blend(tiles[r - 1][c], tile, 3, grid.blend_h);
      if (c > 0) Blend(tiles[r][c - 1], tile, 4, grid.blend_w);
      kept.push_back(tile.narrow(3, 0, std::min(grid.keep_h, tile.size(3)))
                         .narrow(4, 0, std::min(grid.keep_w, tile.size(4))));
    }
    // [B, C, T, h, w_c]... -> [B, C, T, h, W]
    rows.push_back(torch::cat(kept, 4));
  }
  // [B, C, T, h_r, W]... -> [B, C, T, H, W]
  return torch::cat(rows, 3);
}

}  // namespace lvs::vae
