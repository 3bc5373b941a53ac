#include "worker/fake_model.h"

#include <sys/stat.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"

namespace lvs::worker {
namespace {

// A triangle wave 0..255..0 of period 510: continuous, so the moving
// gradients have no hard edges (they encode well).
uint8_t Triangle(int v) {
  const int m = v % 510;
  return static_cast<uint8_t>(m < 256 ? m : 509 - m);
}

// Sleeps `total` in slices so a cancellation is seen within a few ms.
void SleepUnlessCancelled(absl::Duration total, const CancelToken& cancel) {
  const absl::Time end = absl::Now() + total;
  while (!cancel.cancelled()) {
    const absl::Duration left = end - absl::Now();
    if (left <= absl::ZeroDuration()) return;
    absl::SleepFor(std::min(left, absl::Milliseconds(5)));
  }
}

}  // namespace

FakeVideoModel::FakeVideoModel(FakeVideoModelOptions options)
    : options_(std::move(options)) {}

ModelInfo FakeVideoModel::Info() const {
  ModelInfo info;
  info.model_ids = {"fake"};
  info.device_name = "cpu";
  info.max_width = options_.max_width;
  info.max_height = options_.max_height;
  info.max_frames = options_.max_frames;
  info.default_width = options_.default_width;
  info.default_height = options_.default_height;
  info.default_frames = options_.default_frames;
  info.default_fps = options_.default_fps;
  info.default_steps = options_.default_steps;
  return info;
}

absl::StatusOr<std::string> FakeVideoModel::Reload(
    const std::string& checkpoint, bool use_ema, const std::string& vae) {
  auto is_dir = [](const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  };
  if (!is_dir(checkpoint)) {
    return absl::NotFoundError(
        absl::StrCat("checkpoint: '", checkpoint, "' is not a directory"));
  }
  if (!vae.empty() && !is_dir(vae)) {
    return absl::NotFoundError(
        absl::StrCat("vae: '", vae, "' is not a directory"));
  }
  version_ = absl::StrCat(checkpoint, use_ema ? " (ema)" : "",
                          vae.empty() ? "" : " + vae " + vae);
  return version_;
}

void FakeVideoModel::RenderFrame(uint64_t seed, int index, int width,
                                 int height, uint8_t* rgb) {
  const int r0 = static_cast<int>(seed % 251);
  const int g0 = static_cast<int>((seed / 251) % 241);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = rgb + (static_cast<size_t>(y) * width + x) * 3;
      p[0] = Triangle(x * 255 / std::max(width - 1, 1) + r0 + index * 6);
      p[1] = Triangle(y * 255 / std::max(height - 1, 1) + g0 + index * 3);
      p[2] = Triangle((x + y) / 2 + index * 9);
    }
  }
}

absl::Status FakeVideoModel::MakePlan(const GenerateRequest& request,
                                      VideoPlan* plan) const {
  plan->width = request.width > 0 ? request.width : options_.default_width;
  plan->height = request.height > 0 ? request.height : options_.default_height;
  plan->frames = request.frames > 0 ? request.frames : options_.default_frames;
  plan->fps = request.fps > 0 ? request.fps : options_.default_fps;
  // N grid points are N - 1 denoising steps, as in the Euler sampler.
  const int grid =
      request.grid_points > 0 ? request.grid_points : options_.default_steps;
  plan->denoise_steps = std::max(grid - 1, 1);
  plan->seed = request.seed;
  if (plan->width % 2 != 0 || plan->width > options_.max_width) {
    return absl::InvalidArgumentError(absl::StrCat("width: ", plan->width,
                                                   " must be even and at most ",
                                                   options_.max_width));
  }
  if (plan->height % 2 != 0 || plan->height > options_.max_height) {
    return absl::InvalidArgumentError(absl::StrCat("height: ", plan->height,
                                                   " must be even and at most ",
                                                   options_.max_height));
  }
  if (plan->frames > options_.max_frames) {
    return absl::InvalidArgumentError(absl::StrCat(
        "frames: ", plan->frames, " exceeds ", options_.max_frames));
  }
  return absl::OkStatus();
}

absl::Status FakeVideoModel::Generate(const GenerateRequest& request,
                                      ProgressSink& sink,
                                      const CancelToken& cancel) {
  VideoPlan plan;
  LVS_RETURN_IF_ERROR(MakePlan(request, &plan));
  sink.OnPlan(plan);
  sink.OnTextEncoded(static_cast<int>(request.prompt.size() / 4 + 1), 0.0);
  for (int i = 0; i < plan.denoise_steps; ++i) {
    if (cancel.cancelled()) return absl::CancelledError("job cancelled");
    SleepUnlessCancelled(options_.step_time, cancel);
    if (cancel.cancelled()) return absl::CancelledError("job cancelled");
    if (i + 1 == options_.fail_at_step) {
      return absl::InternalError(absl::StrCat(
          "fake model failure at step ", i + 1, " of ", plan.denoise_steps));
    }
    StepEvent step;
    step.index = i;
    step.denoise_steps = plan.denoise_steps;
    step.t = static_cast<double>(i + 1) / plan.denoise_steps;
    step.patch = "1x2";
    step.guided = true;
    sink.OnStep(step);
  }
  const size_t frame_bytes = static_cast<size_t>(plan.width) * plan.height * 3;
  std::vector<uint8_t> rgb;
  for (int first = 0; first < plan.frames; first += options_.chunk_frames) {
    if (cancel.cancelled()) return absl::CancelledError("job cancelled");
    const int count = std::min(options_.chunk_frames, plan.frames - first);
    SleepUnlessCancelled(options_.decode_time, cancel);
    if (cancel.cancelled()) return absl::CancelledError("job cancelled");
    rgb.resize(frame_bytes * count);
    for (int f = 0; f < count; ++f) {
      RenderFrame(plan.seed, first + f, plan.width, plan.height,
                  rgb.data() + frame_bytes * f);
    }
    FrameBatch batch;
    batch.first_frame = first;
    batch.count = count;
    batch.width = plan.width;
    batch.height = plan.height;
    batch.rgb = rgb;
    LVS_RETURN_IF_ERROR(sink.OnFrames(batch));
    sink.OnDecoded(first + count, plan.frames);
  }
  return absl::OkStatus();
}

}  // namespace lvs::worker
