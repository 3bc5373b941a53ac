#include "worker/lumina_model.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "model/common/cpu_runtime.h"
#include "model/pipeline/pipeline.h"
#include "model/sampler/checkpoint_defaults.h"

namespace lvs::worker {
namespace {

// The name under which a checkpoint's sample_config.json is advertised.
constexpr char kCheckpointConfigName[] = "checkpoint";

// `<dit>/sample_config.json`, named kCheckpointConfigName; nullopt when
// the checkpoint has none.
absl::StatusOr<std::optional<sampler::SampleConfig>> CheckpointConfig(
    const std::string& dit_dir) {
  LVS_ASSIGN_OR_RETURN(std::optional<sampler::SampleConfig> config,
                       sampler::CheckpointSampleConfig(dit_dir));
  if (config) config->name = kCheckpointConfigName;
  return config;
}

class LuminaVideoModel : public VideoModel {
 public:
  LuminaVideoModel(std::unique_ptr<pipeline::Pipeline> pipe,
                   std::string version,
                   std::optional<sampler::SampleConfig> checkpoint_config)
      : pipe_(std::move(pipe)),
        version_(std::move(version)),
        checkpoint_config_(std::move(checkpoint_config)) {}

  ModelInfo Info() const override {
    const pipeline::ModelLimits& l = pipe_->limits();
    int64_t min_patch = 0, min_f_patch = 0;
    for (const sampler::PatchComb& p : l.patches) {
      if (min_patch == 0 || p.patch < min_patch) min_patch = p.patch;
      if (min_f_patch == 0 || p.f_patch < min_f_patch) min_f_patch = p.f_patch;
    }
    ModelInfo info;
    info.model_ids = {"lumina-video", "lumina"};
    std::vector<std::string> names;
    for (const torch::Device& d : pipe_->devices()) names.push_back(d.str());
    info.device_name = absl::StrJoin(names, ",");
    // The RoPE limits with the smallest patches bound every request.
    info.max_height = static_cast<int>(l.rope_max_positions[1] *
                                       l.spatial_factor * min_patch);
    info.max_width = static_cast<int>(l.rope_max_positions[2] *
                                      l.spatial_factor * min_patch);
    info.max_frames = static_cast<int>(l.rope_max_positions[0] * min_f_patch *
                                           l.temporal_factor +
                                       l.temporal_factor - 1);
    info.frames_per_latent = static_cast<int>(l.temporal_factor);
    info.min_latent_frames = 2;
    info.max_fps = l.max_fps;
    info.max_steps = l.max_grid_points;
    info.max_pixels =
        (l.max_resolution / 32 * 32) * (l.max_resolution / 32 * 32);
    for (const std::string& name : sampler::NamedSampleConfigNames()) {
      absl::StatusOr<sampler::SampleConfig> c =
          sampler::NamedSampleConfig(name);
      if (!c.ok()) continue;
      std::optional<SampleConfigRule> rule = Rule(*c, l);
      if (rule) info.sample_configs.push_back(*rule);
    }
    // The reference's defaults (generation_request.h), when the checkpoint
    // has the patches of its default config.
    const pipeline::GenerationRequest defaults;
    info.default_frames = defaults.frames;
    info.default_fps = defaults.fps;
    info.default_width = 1248;
    info.default_height = 704;
    for (const SampleConfigRule& r : info.sample_configs) {
      if (r.name == defaults.sample_config) {
        info.default_sample_config = r.name;
        info.latent_frames_multiple = r.latent_frames_multiple;
      }
    }
    if (info.default_sample_config.empty() && !info.sample_configs.empty()) {
      info.default_sample_config = info.sample_configs.front().name;
      info.latent_frames_multiple =
          info.sample_configs.front().latent_frames_multiple;
    }
    auto named = sampler::NamedSampleConfig(info.default_sample_config);
    info.default_steps = named.ok() ? named->grid_points : 70;
    // The checkpoint's own defaults (<dit>/sample_config.json) win.
    std::optional<SampleConfigRule> own =
        checkpoint_config_ ? Rule(*checkpoint_config_, l) : std::nullopt;
    if (own) {
      info.sample_configs.push_back(*own);
      info.default_sample_config = own->name;
      info.latent_frames_multiple = own->latent_frames_multiple;
      info.default_steps = checkpoint_config_->grid_points;
    }
    return info;
  }

  // The rules of `config` on this checkpoint; none when the DiT lacks one of
  // its patch combinations.
  static std::optional<SampleConfigRule> Rule(
      const sampler::SampleConfig& config, const pipeline::ModelLimits& l) {
    std::vector<sampler::PatchComb> patches = {config.patch.default_value};
    for (const auto& [t, p] : config.patch.steps) patches.push_back(p);
    SampleConfigRule rule;
    rule.name = config.name;
    for (const sampler::PatchComb& p : patches) {
      bool found = l.patches.empty();
      for (const sampler::PatchComb& q : l.patches) found = found || p == q;
      if (!found) return std::nullopt;
      rule.latent_frames_multiple =
          std::max(rule.latent_frames_multiple, static_cast<int>(p.f_patch));
    }
    // The pipeline's budget: (W/32) * (H/32) cells <= (R/32)^2.
    const int64_t r = pipeline::ResolutionBudget(config, l) / 32 * 32;
    rule.max_pixels = r * r;
    return rule;
  }

  uint64_t DeviceMemoryInUse() const override {
    return static_cast<uint64_t>(pipe_->DeviceMemoryInUse());
  }

  absl::StatusOr<std::string> Reload(const std::string& checkpoint,
                                     bool use_ema,
                                     const std::string& vae) override {
    LVS_ASSIGN_OR_RETURN(std::optional<sampler::SampleConfig> config,
                         CheckpointConfig(checkpoint));
    LVS_RETURN_IF_ERROR(pipe_->Reload(checkpoint, use_ema, vae));
    // Requests keep the step count the registration advertised; the
    // checkpoint's config supplies the rest.
    checkpoint_config_ = std::move(config);
    version_ = absl::StrCat(checkpoint, use_ema ? " (ema)" : "",
                            vae.empty() ? "" : " + vae " + vae);
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
    r.config = request.sample;
    if (!r.config && (request.sample_config.empty() ||
                      request.sample_config == kCheckpointConfigName)) {
      if (checkpoint_config_) {
        r.config = checkpoint_config_;
      } else if (!request.sample_config.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("sample_config: the checkpoint ", version_, " has no ",
                         sampler::kCheckpointSampleConfigFile));
      }
    } else if (!request.sample_config.empty()) {
      r.sample_config = request.sample_config;
    }
    r.grid_points = request.grid_points;
    r.seed = request.seed;
    r.cache_threshold = request.cache_threshold;
    LVS_ASSIGN_OR_RETURN(r.precision,
                         pipeline::ParsePrecision(request.precision));

    pipeline::PipelineCallbacks cb;
    cb.on_plan = [&](const pipeline::GenerationPlan& p) {
      VideoPlan plan;
      plan.width = p.request.width;
      plan.height = p.request.height;
      plan.frames = static_cast<int>(p.output_frames);
      plan.fps = p.request.fps;
      plan.denoise_steps = p.grid_points - 1;
      plan.seed = p.request.seed;
      sink.OnPlan(plan);
    };
    cb.on_text_encoded = [&](const pipeline::TextEncodedEvent& e) {
      sink.OnTextEncoded(static_cast<int>(e.tokens), e.seconds);
    };
    cb.on_step = [&](const sampler::StepInfo& s) {
      StepEvent e;
      e.index = s.index;
      e.denoise_steps = s.denoise_steps;
      e.t = s.t;
      e.patch = s.patch.ToString();
      e.guided = s.guided;
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
    LVS_ASSIGN_OR_RETURN(pipeline::GenerationResult result,
                         pipe_->Generate(r, cb));
    sink.OnDiTForwards(result.dit_forwards_computed,
                       result.dit_forwards_cached);
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<pipeline::Pipeline> pipe_;
  std::string version_;
  // <dit>/sample_config.json of the DiT in use, if it has one.
  std::optional<sampler::SampleConfig> checkpoint_config_;
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
  po.devices = options.devices;
  common::ConfigureCpuThreads(options.threads);
  std::fprintf(stderr, "lvs-worker: cpu: %s\n",
               common::CpuRuntimeSummary().c_str());
  LVS_ASSIGN_OR_RETURN(std::optional<sampler::SampleConfig> config,
                       CheckpointConfig(options.dit_dir));
  if (config) {
    std::fprintf(stderr, "lvs-worker: default sample config: %s/%s\n",
                 options.dit_dir.c_str(), sampler::kCheckpointSampleConfigFile);
  }
  const bool cuda = po.device.rfind("cuda", 0) == 0;
  const bool amx = !cuda && common::CpuHasAmxBf16();
  std::fprintf(stderr,
               "lvs-worker: requests without a precision run in %s (%s)\n",
               pipeline::DefaultsToBf16(cuda, amx) ? "bf16" : "fp32",
               cuda  ? "CUDA"
               : amx ? "CPU with AMX-BF16"
                     : "CPU without AMX-BF16");
  LVS_ASSIGN_OR_RETURN(auto pipe, pipeline::Pipeline::Create(po));
  return std::unique_ptr<VideoModel>(new LuminaVideoModel(
      std::move(pipe), options.dit_dir, std::move(config)));
}

}  // namespace lvs::worker
