#include "worker/lumina_model.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/common/cpu_runtime.h"
#include "model/common/status_macros.h"
#include "model/pipeline/pipeline.h"
#include "model/sampler/sample_config.h"
#include "nlohmann/json.hpp"

namespace lvs::worker {
namespace {

// The name under which a checkpoint's own generation defaults
// (`<dit>/sample_config.json`) are advertised and requested.
constexpr char kCheckpointConfig[] = "checkpoint";

// Reads `<dit_dir>/sample_config.json` (sample_config.h JSON form), the
// generation defaults a checkpoint may carry; none when the file is absent.
absl::StatusOr<std::optional<sampler::SampleConfig>> ReadCheckpointConfig(
    const std::string& dit_dir) {
  const std::string path = dit_dir + "/sample_config.json";
  std::ifstream in(path);
  if (!in) return std::optional<sampler::SampleConfig>();
  const nlohmann::json json = nlohmann::json::parse(in, nullptr, false);
  absl::StatusOr<sampler::SampleConfig> config =
      sampler::SampleConfigFromJson(json, kCheckpointConfig);
  if (!config.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", config.status().message()));
  }
  config->name = kCheckpointConfig;
  return std::optional<sampler::SampleConfig>(*std::move(config));
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
    int min_patch = 0, min_f_patch = 0;
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
    info.max_steps = l.max_steps;
    info.max_pixels =
        (l.max_resolution / 32 * 32) * (l.max_resolution / 32 * 32);
    for (const std::string& name : sampler::NamedSampleConfigNames()) {
      absl::StatusOr<sampler::SampleConfig> c =
          sampler::NamedSampleConfig(name);
      if (!c.ok()) continue;
      std::optional<SampleConfigRule> rule = Rule(*c, l);
      if (rule) info.sample_configs.push_back(*rule);
    }
    // The checkpoint's own defaults come first and are the default.
    std::optional<SampleConfigRule> own;
    if (checkpoint_config_) own = Rule(*checkpoint_config_, l);
    if (own) info.sample_configs.insert(info.sample_configs.begin(), *own);
    // The reference's defaults (generation_request.h), when the checkpoint
    // has the patches of its default config.
    const pipeline::GenerationRequest defaults;
    info.default_frames = defaults.frames;
    info.default_fps = defaults.fps;
    info.default_width = 1248;
    info.default_height = 704;
    for (const SampleConfigRule& r : info.sample_configs) {
      if (r.name == defaults.sample_config && !own) {
        info.default_sample_config = r.name;
        info.latent_frames_multiple = r.latent_frames_multiple;
      }
    }
    if (info.default_sample_config.empty() && !info.sample_configs.empty()) {
      info.default_sample_config = info.sample_configs.front().name;
      info.latent_frames_multiple =
          info.sample_configs.front().latent_frames_multiple;
    }
    auto named =
        own ? absl::StatusOr<sampler::SampleConfig>(*checkpoint_config_)
            : sampler::NamedSampleConfig(info.default_sample_config);
    info.default_steps = named.ok() ? named->num_steps : 70;
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
          std::max(rule.latent_frames_multiple, p.f_patch);
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
    r.config = request.sample;
    // The checkpoint's defaults: by name, or when nothing else is asked for.
    if (checkpoint_config_ && !r.config &&
        (request.sample_config.empty() ||
         request.sample_config == kCheckpointConfig)) {
      r.config = checkpoint_config_;
    }
    r.steps = request.steps;
    r.seed = request.seed;
    r.cache_threshold = request.cache_threshold;
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
    LVS_ASSIGN_OR_RETURN(pipeline::GenerationResult result,
                         pipe_->Generate(r, cb));
    sink.OnDiTForwards(result.dit_forwards_computed,
                       result.dit_forwards_cached);
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<pipeline::Pipeline> pipe_;
  std::string version_;
  // `<dit>/sample_config.json`, advertised as "checkpoint" and used by
  // default (as `lvs-model generate` does).
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
  LVS_ASSIGN_OR_RETURN(std::optional<sampler::SampleConfig> own,
                       ReadCheckpointConfig(options.dit_dir));
  if (own) {
    std::fprintf(stderr, "lvs-worker: default sample config: %s/%s\n",
                 options.dit_dir.c_str(), "sample_config.json");
  }
  LVS_ASSIGN_OR_RETURN(auto pipe, pipeline::Pipeline::Create(po));
  return std::unique_ptr<VideoModel>(
      new LuminaVideoModel(std::move(pipe), options.dit_dir, std::move(own)));
}

}  // namespace lvs::worker
