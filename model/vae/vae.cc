#include "model/vae/vae.h"

#include <c10/core/DeviceGuard.h>

#include <algorithm>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "model/common/torch_status.h"
#include "model/io/state_dict.h"
#include "model/io/torch_tensors.h"

namespace lvs::vae {
namespace {

std::string ShapeString(const torch::Tensor& t) {
  return absl::StrCat("[", absl::StrJoin(t.sizes(), ","), "]");
}

absl::Status CheckDtype(torch::ScalarType dtype) {
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16) {
    return absl::InvalidArgumentError(
        absl::StrCat("VaeOptions.dtype must be float32 or bfloat16, got ",
                     c10::toString(dtype)));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::pair<int64_t, int64_t>> DecodeChunks(int64_t n) {
  std::vector<std::pair<int64_t, int64_t>> chunks;
  const int64_t rem = n % kLatentFramesPerChunk;
  for (int64_t k = 0; k < n / kLatentFramesPerChunk; ++k) {
    const int64_t start = kLatentFramesPerChunk * k + (k == 0 ? 0 : rem);
    const int64_t end = kLatentFramesPerChunk * (k + 1) + rem;
    chunks.emplace_back(start, end - start);
  }
  return chunks;
}

VaeModelImpl::VaeModelImpl(const VaeConfig& config) {
  encoder = register_module("encoder", Encoder3D(config));
  decoder = register_module("decoder", Decoder3D(config));
}

absl::StatusOr<int64_t> DecodedFrameCount(const VaeConfig& config,
                                          int64_t latent_frames) {
  if (latent_frames < kLatentFramesPerChunk) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VAE decode needs at least ", kLatentFramesPerChunk,
        " latent frames (chunks of ", kLatentFramesPerChunk,
        ", the first absorbing an odd remainder); got ", latent_frames));
  }
  int64_t frames = 0;
  for (const auto& [start, length] : DecodeChunks(latent_frames)) {
    frames += DecodedChunkFrames(config, length);
  }
  return frames;
}

CogVideoXVae::CogVideoXVae(VaeConfig config, VaeOptions options, VaeModel model)
    : config_(std::move(config)),
      options_(std::move(options)),
      model_(std::move(model)) {}

absl::StatusOr<std::unique_ptr<CogVideoXVae>> CogVideoXVae::CreateRandom(
    const VaeConfig& config, const VaeOptions& options) {
  LVS_RETURN_IF_ERROR(CheckDtype(options.dtype));
  try {
    VaeModel model(config);
    model->to(options.device, options.dtype);
    model->eval();
    return std::unique_ptr<CogVideoXVae>(
        new CogVideoXVae(config, options, std::move(model)));
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e, "building the VAE");
  }
}

absl::StatusOr<std::unique_ptr<CogVideoXVae>> CogVideoXVae::Create(
    const std::string& dir, const VaeOptions& options) {
  LVS_RETURN_IF_ERROR(CheckDtype(options.dtype));
  LVS_ASSIGN_OR_RETURN(VaeConfig config, ReadVaeConfig(dir + "/config.json"));
  const std::string weights = dir + "/diffusion_pytorch_model.safetensors";
  LVS_ASSIGN_OR_RETURN(io::TensorMap tensors, io::LoadSafetensors(weights));
  try {
    VaeModel model(config);
    io::StateDictOptions load;
    load.dtype = options.dtype;
    load.device = options.device;
    LVS_RETURN_IF_ERROR(io::LoadStateDict(*model, tensors, load, weights));
    model->eval();
    return std::unique_ptr<CogVideoXVae>(
        new CogVideoXVae(std::move(config), options, std::move(model)));
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e, absl::StrCat("loading ", weights));
  }
}

absl::StatusOr<torch::Tensor> CogVideoXVae::Decode(
    const torch::Tensor& z, const ChunkFn& on_chunk,
    const TraceFn& on_stage) const {
  return DecodeWith(z, {}, on_chunk, on_stage);
}

absl::StatusOr<torch::Tensor> CogVideoXVae::DecodeParallel(
    const torch::Tensor& z, const std::vector<const CogVideoXVae*>& helpers,
    const ChunkFn& on_chunk) const {
  return DecodeWith(z, helpers, on_chunk, {});
}

absl::StatusOr<torch::Tensor> CogVideoXVae::DecodeWith(
    const torch::Tensor& z, const std::vector<const CogVideoXVae*>& helpers,
    const ChunkFn& on_chunk, const TraceFn& on_stage) const {
  if (!z.defined() || z.dim() != 5 || !z.is_floating_point()) {
    return absl::InvalidArgumentError(
        "VAE decode: latents must be a floating-point [B, C, n, h, w] tensor");
  }
  if (z.size(1) != config_.latent_channels) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VAE decode: latents ", ShapeString(z), " have ", z.size(1),
        " channels, the VAE expects ", config_.latent_channels));
  }
  if (z.size(0) < 1 || z.size(3) < 1 || z.size(4) < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("VAE decode: empty latents ", ShapeString(z)));
  }
  LVS_RETURN_IF_ERROR(DecodedFrameCount(config_, z.size(2)).status());
  try {
    torch::NoGradGuard no_grad;
    if (!torch::isfinite(z).all().item<bool>()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "VAE decode: latents ", ShapeString(z), " contain ",
          (~torch::isfinite(z)).sum().item<int64_t>(), " non-finite values"));
    }
    return DecodeChecked(z, helpers, on_chunk, on_stage);
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e, "VAE decode");
  }
}

absl::StatusOr<torch::Tensor> CogVideoXVae::DecodeChecked(
    const torch::Tensor& z_in, const std::vector<const CogVideoXVae*>& helpers,
    const ChunkFn& on_chunk, const TraceFn& on_stage) const {
  const torch::Tensor z = z_in.to(options_.device, options_.dtype);
  const int64_t s = config_.SpatialCompressionRatio();
  LVS_ASSIGN_OR_RETURN(const int64_t total,
                       DecodedFrameCount(config_, z.size(2)));
  TileGrid grid;
  if (options_.tiling.enabled) {
    LVS_ASSIGN_OR_RETURN(
        grid, PlanTiles(options_.tiling, config_, z.size(3), z.size(4)));
  } else {
    grid.tile_h = z.size(3);
    grid.tile_w = z.size(4);
    grid.row_starts = grid.col_starts = {0};
  }
  torch::Tensor out = torch::empty(
      {z.size(0), config_.out_channels, total, z.size(3) * s, z.size(4) * s},
      z.options());
  std::vector<CausalCache> caches(grid.row_starts.size() *
                                  grid.col_starts.size());
  // Rank 0 is this VAE; tile k runs on rank k % ranks.
  std::vector<const CogVideoXVae*> ranks = {this};
  if (caches.size() > 1)
    ranks.insert(ranks.end(), helpers.begin(), helpers.end());
  int64_t frame = 0, chunk_index = 0;
  for (const auto& [start, length] : DecodeChunks(z.size(2))) {
    const torch::Tensor chunk = z.narrow(2, start, length);
    const size_t cols = grid.col_starts.size();
    std::vector<std::vector<torch::Tensor>> tiles(
        grid.row_starts.size(), std::vector<torch::Tensor>(cols));
    auto decode_tile = [&](const CogVideoXVae& vae, size_t k) {
      const size_t r = k / cols, c = k % cols;
      const int64_t r0 = grid.row_starts[r], c0 = grid.col_starts[c];
      const torch::Tensor tile =
          chunk.narrow(3, r0, std::min(grid.tile_h, z.size(3) - r0))
              .narrow(4, c0, std::min(grid.tile_w, z.size(4) - c0))
              .to(vae.options_.device);
      StageFn stage;
      if (on_stage && caches.size() == 1) {
        stage = [&, chunk_index](const std::string& name,
                                 const torch::Tensor& value) {
          on_stage(chunk_index, name, value);
        };
      }
      tiles[r][c] = vae.model_->decoder.ptr()
                        ->forward(tile, caches[k], stage)
                        .to(z.device());
    };
    if (ranks.size() == 1) {
      for (size_t k = 0; k < caches.size(); ++k) decode_tile(*this, k);
    } else {
      std::vector<std::string> errors(ranks.size());
      std::vector<std::thread> threads;
      for (size_t q = 0; q < ranks.size(); ++q) {
        threads.emplace_back([&, q] {
          try {
            torch::NoGradGuard no_grad;
            c10::DeviceGuard guard(ranks[q]->options_.device);
            for (size_t k = q; k < caches.size(); k += ranks.size()) {
              decode_tile(*ranks[q], k);
            }
          } catch (const std::exception& e) {
            errors[q] = e.what();
          }
        });
      }
      for (std::thread& t : threads) t.join();
      for (const std::string& e : errors) {
        if (!e.empty()) {
          return absl::InternalError(absl::StrCat("VAE tile decode: ", e));
        }
      }
    }
    torch::Tensor frames =
        caches.size() == 1 ? tiles[0][0] : BlendAndStitch(tiles, grid);
    tiles.clear();
    out.narrow(2, frame, frames.size(2)).copy_(frames);
    if (on_chunk) {
      LVS_RETURN_IF_ERROR(on_chunk(out.narrow(2, frame, frames.size(2))));
    }
    frame += frames.size(2);
    ++chunk_index;
  }
  if (frame != total) {
    return absl::InternalError(absl::StrCat("VAE decode: produced ", frame,
                                            " frames, expected ", total));
  }
  return out;
}

absl::Status CogVideoXVae::CheckVideo(const torch::Tensor& video) const {
  const int64_t s = config_.SpatialCompressionRatio();
  if (!video.defined() || video.dim() != 5 || !video.is_floating_point()) {
    return absl::InvalidArgumentError(
        "VAE encode: video must be a floating-point [B, C, T, H, W] tensor");
  }
  if (video.size(1) != config_.in_channels) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VAE encode: video ", ShapeString(video), " has ", video.size(1),
        " channels, the VAE expects ", config_.in_channels));
  }
  if (video.size(0) < 1 || video.size(2) < 1 || video.size(3) < s ||
      video.size(4) < s || video.size(3) % s != 0 || video.size(4) % s != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VAE encode: video ", ShapeString(video),
        " needs at least one frame and H, W positive multiples of ", s));
  }
  if (!torch::isfinite(video).all().item<bool>()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VAE encode: video ", ShapeString(video), " has non-finite values"));
  }
  return absl::OkStatus();
}

absl::StatusOr<LatentDist> CogVideoXVae::Encode(
    const torch::Tensor& video) const {
  return EncodeChunked(video, video.defined() && video.dim() == 5
                                  ? std::max<int64_t>(video.size(2), 1)
                                  : 1);
}

absl::StatusOr<LatentDist> CogVideoXVae::EncodeChunked(
    const torch::Tensor& video, int64_t frames_per_chunk) const {
  if (frames_per_chunk < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("VAE encode: frames_per_chunk must be positive, got ",
                     frames_per_chunk));
  }
  try {
    torch::NoGradGuard no_grad;
    LVS_RETURN_IF_ERROR(CheckVideo(video));
    return EncodeChecked(video, frames_per_chunk);
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e, "VAE encode");
  }
}

absl::StatusOr<LatentDist> CogVideoXVae::EncodeChecked(
    const torch::Tensor& video_in, int64_t frames_per_chunk) const {
  const torch::Tensor video = video_in.to(options_.device, options_.dtype);
  Encoder3DImpl& encoder = *model_->encoder.ptr();
  CausalCache cache;
  std::vector<torch::Tensor> moments;
  for (int64_t start = 0; start < video.size(2); start += frames_per_chunk) {
    const int64_t length = std::min(frames_per_chunk, video.size(2) - start);
    moments.push_back(encoder.forward(video.narrow(2, start, length), cache));
  }
  // [B, 2Z, T'_k, h, w]... -> [B, 2Z, T', h, w]
  torch::Tensor h = moments.size() == 1 ? moments[0] : torch::cat(moments, 2);
  LatentDist dist;
  dist.mean = h.narrow(1, 0, config_.latent_channels);
  dist.logvar = h.narrow(1, config_.latent_channels, config_.latent_channels)
                    .clamp(-30.0, 20.0);
  dist.std = torch::exp(0.5 * dist.logvar);
  return dist;
}

}  // namespace lvs::vae
