#include "worker/lumina_model.h"

#include <cstdio>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/common/cpu_runtime.h"
#include "model/common/status_macros.h"
#include "model/pipeline/pipeline.h"

namespace lvs::worker {
namespace {

class LuminaVideoModel : public VideoModel {
 public:
  LuminaVideoModel(std::unique_ptr<pipeline::Pipeline> pipe,
                   std::string version)
      : pipe_(std::move(pipe)), version_(std::move(version)) {}

  ModelInfo Info() const override {
    const pipeline::ModelLimits& l = pipe_->limits();
    int min_patch = 0, min_f_patch = 0;
    for (const sampler::PatchComb& p : l.patches) {
      if (min_patch == 0 || p.patch < min_patch) min_patch = p.patch;
      if (min_f_patch == 0 || p.f_patch < min_f_patch) min_f_patch = p.f_patch;
    }
    ModelInfo info;
    info.model_ids = {"lumina-video"};
    info.device_name = pipe_->device().str();
    // The RoPE limits with the smallest patches bound every request.
    info.max_height = static_cast<int>(l.rope_max_positions[1] *
                                       l.spatial_factor * min_patch);
    info.max_width = static_cast<int>(l.rope_max_positions[2] *
                                      l.spatial_factor * min_patch);
    info.max_frames = static_cast<int>(l.rope_max_positions[0] * min_f_patch *
                                           l.temporal_factor +
                                       l.temporal_factor - 1);
    return info;
  }

  uint64_t DeviceMemoryInUse() const override {
    return static_cast<uint64_t>(pipe_->DeviceMemoryInUse());
  }

  absl::StatusOr<std::string> Reload(const std::string& checkpoint,
                                     bool use_ema) override {
    LVS_RETURN_IF_ERROR(pipe_->ReloadDiT(checkpoint, use_ema));
    version_ = absl::StrCat(checkpoint, use_ema ? " (ema)" : "");
    return version_;
  }

  std::string Version() const override { return version_; }

  absl::Status Generate(const GenerateRequest& request, ProgressSink& sink,
                        const CancelToken& cancel) override {
    pipeline::GenerationRequest r;
    r.prompt = request.prompt;
    r.negative_prompt = request.negative_prompt;
    r.width = request.width;
    r.height = request.height;
    // Zero means "not set": the pipeline's defaults (96 frames, 24 fps).
    if (request.frames != 0) r.frames = request.frames;
    if (request.fps != 0) r.fps = request.fps;
    if (!request.sample_config.empty()) r.sample_config = request.sample_config;
    r.steps = request.steps;
    r.seed = request.seed;
    LVS_ASSIGN_OR_RETURN(r.precision,
                         pipeline::ParsePrecision(request.precision));

    double last_step_s = 0;
    pipeline::PipelineCallbacks cb;
    cb.on_plan = [&](const pipeline::GenerationPlan& p) {
      VideoPlan plan;
      plan.width = p.request.width;
      plan.height = p.request.height;
      plan.frames = static_cast<int>(p.output_frames);
      plan.fps = p.request.fps;
      plan.steps = p.steps - 1;  // Model calls = reported steps.
      plan.seed = p.request.seed;
      sink.OnPlan(plan);
    };
    cb.on_text_encoded = [&](const pipeline::TextEncodedEvent& e) {
      sink.OnTextEncoded(static_cast<int>(e.tokens), e.seconds);
    };
    cb.on_step = [&](const sampler::StepInfo& s) {
      StepEvent e;
      e.index = s.index + 1;
      e.total = s.total;
      e.t = s.t;
      e.patch = s.patch.ToString();
      e.guided = s.guided;
      e.seconds = s.elapsed_s - last_step_s;
      last_step_s = s.elapsed_s;
      sink.OnStep(e);
    };
    cb.on_frames = [&](const pipeline::FramesEvent& e) -> absl::Status {
      FrameBatch batch;
      batch.first_frame = static_cast<int>(e.first_frame);
      batch.count = static_cast<int>(e.count);
      batch.width = e.width;
      batch.height = e.height;
      batch.rgb = e.rgb;
      LVS_RETURN_IF_ERROR(sink.OnFrames(batch));
      sink.OnDecoded(static_cast<int>(e.first_frame + e.count),
                     static_cast<int>(e.total));
      return absl::OkStatus();
    };
    cb.cancelled = [&cancel] { return cancel.cancelled(); };
    return pipe_->Generate(r, cb).status();
  }

 private:
  std::unique_ptr<pipeline::Pipeline> pipe_;
  std::string version_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<VideoModel>> CreateLuminaModel(
    const ModelOptions& options) {
  for (const auto& [flag, value] :
       {std::pair<const char*, const std::string*>{"--dit", &options.dit_dir},
        {"--text-encoder", &options.text_encoder_dir},
        {"--vae", &options.vae_dir}}) {
    if (value->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": required with --model=lumina"));
    }
  }
  pipeline::PipelineOptions po;
  po.dit_dir = options.dit_dir;
  po.text_encoder_dir = options.text_encoder_dir;
  po.vae_dir = options.vae_dir;
  po.device = options.device.empty() ? "cpu" : options.device;
  common::ConfigureCpuThreads(options.threads);
  std::fprintf(stderr, "lvs-worker: cpu: %s\n",
               common::CpuRuntimeSummary().c_str());
  LVS_ASSIGN_OR_RETURN(auto pipe, pipeline::Pipeline::Create(po));
  return std::unique_ptr<VideoModel>(
      new LuminaVideoModel(std::move(pipe), options.dit_dir));
}

}  // namespace lvs::worker
