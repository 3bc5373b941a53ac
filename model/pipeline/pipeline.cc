#include "model/pipeline/pipeline.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "model/common/cpu_runtime.h"
#include "model/common/torch_status.h"
#include "model/io/torch_tensors.h"
#include "model/pipeline/device_group.h"
#include "model/pipeline/dit_velocity.h"
#include "model/pipeline/memory_stats.h"
#include "model/pipeline/step_cache.h"

namespace lvs::pipeline {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

torch::ScalarType DtypeOf(Precision precision) {
  return precision == Precision::kBFloat16 ? torch::kBFloat16 : torch::kFloat32;
}

// Whether kDefault runs in bfloat16 on `device` (see DefaultsToBf16).
bool DefaultsToBf16(const torch::Device& device) {
  return pipeline::DefaultsToBf16(device.is_cuda(),
                                  device.is_cpu() && common::CpuHasAmxBf16());
}

absl::StatusOr<torch::Device> ParseDevice(const std::string& text) {
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(text);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("device: '", text, "' is not cpu, cuda or cuda:N"));
  }
  if (device.is_cuda()) {
    if (!torch::cuda::is_available()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "device ", text,
          ": no CUDA device is available to this LibTorch (a CPU build, or "
          "no GPU); use --device cpu"));
    }
    const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
    if (device.has_index() && device.index() >= count) {
      return absl::InvalidArgumentError(absl::StrCat(
          "device ", text, ": only ", count, " CUDA device(s) present"));
    }
    if (!device.has_index()) device = torch::Device(torch::kCUDA, 0);
  } else if (!device.is_cpu()) {
    return absl::InvalidArgumentError(
        absl::StrCat("device: '", text, "' is not cpu, cuda or cuda:N"));
  }
  return device;
}

// Converts a decoded chunk [1, 3, t, H, W] to uint8 frames [t, H, W, 3] on
// the CPU: clamp((x + 1) / 2, 0, 1) * 255 in float32, truncated.
torch::Tensor ToUint8Frames(const torch::Tensor& chunk) {
  torch::Tensor x = chunk[0].to(torch::kFloat32);
  x = ((x + 1) / 2).clamp(0, 1).mul(255).to(torch::kUInt8);
  // [3, t, H, W] -> [t, H, W, 3]
  return x.permute({1, 2, 3, 0}).contiguous().to(torch::kCPU);
}

// True when some call of `config` may run guided (cfg > 0).
bool UsesGuidance(const sampler::SampleConfig& config) {
  if (config.cfg.default_value > 0) return true;
  for (const auto& [threshold, cfg] : config.cfg.steps) {
    if (cfg > 0) return true;
  }
  return false;
}

}  // namespace

Pipeline::Pipeline(PipelineOptions options, torch::Device device)
    : options_(std::move(options)), device_(device) {
  dit_dir_ = options_.dit_dir;
  vae_dir_ = options_.vae_dir;
}

Pipeline::~Pipeline() = default;

absl::Status Pipeline::InitDevices() {
  devices_ = {device_};
  if (options_.devices.size() <= 1) return absl::OkStatus();
  std::vector<torch::Device> devices;
  for (const std::string& d : options_.devices) {
    LVS_ASSIGN_OR_RETURN(torch::Device device, ParseDevice(d));
    devices.push_back(device);
  }
  if (devices[0] != device_) {
    return absl::InvalidArgumentError(
        absl::StrCat("devices: the first device ", options_.devices[0],
                     " must be the pipeline's device ", device_.str()));
  }
  devices_ = devices;
  group_ = std::make_unique<DeviceGroup>(std::move(devices));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(
    const PipelineOptions& options) {
  LVS_ASSIGN_OR_RETURN(
      torch::Device device,
      ParseDevice(options.devices.empty() ? options.device
                                          : options.devices[0]));
  std::unique_ptr<Pipeline> p(new Pipeline(options, device));
  Precision precision = options.precision;
  if (precision == Precision::kDefault) {
    precision =
        DefaultsToBf16(device) ? Precision::kBFloat16 : Precision::kFloat32;
  }
  const auto start = Clock::now();
  ResetPeakMemory(device);
  {
    absl::MutexLock lock(&p->mu_);
    LVS_RETURN_IF_ERROR(p->InitDevices());
    LVS_RETURN_IF_ERROR(p->EnsureModels(DtypeOf(precision)));
    LVS_RETURN_IF_ERROR(p->InitLimits());
  }
  p->load_report_ = {"load", SecondsSince(start), PeakRssBytes(),
                     CudaPeakBytes(device)};
  return p;
}

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::FromModels(
    const PipelineOptions& options, Models models) {
  LVS_ASSIGN_OR_RETURN(
      torch::Device device,
      ParseDevice(options.devices.empty() ? options.device
                                          : options.devices[0]));
  std::unique_ptr<Pipeline> p(new Pipeline(options, device));
  absl::MutexLock lock(&p->mu_);
  LVS_RETURN_IF_ERROR(p->InitDevices());
  if (!models.tokenizer || !models.encoder || !models.dit || !models.vae) {
    return absl::InvalidArgumentError(
        "Pipeline::FromModels: every model must be given");
  }
  p->dtype_ = models.encoder->options().dtype;
  p->tokenizer_ = std::move(models.tokenizer);
  p->encoder_ = std::move(models.encoder);
  p->dit_ = models.dit;
  p->vae_ = std::move(models.vae);
  LVS_RETURN_IF_ERROR(p->InitLimits());
  return p;
}

absl::Status Pipeline::InitLimits() {
  const dit::DiTConfig& dc = dit_->config();
  limits_ = ModelLimits();
  limits_.patches = dc.patches;
  limits_.rope_max_positions = dc.rope_axes_max_len();
  limits_.latent_channels = dc.in_channels;
  const vae::VaeConfig& vc = vae_->config();
  limits_.spatial_factor = vc.SpatialCompressionRatio();
  limits_.temporal_factor = vc.temporal_compression_ratio;
  limits_.max_resolution = options_.max_resolution;
  if (vc.latent_channels != dc.in_channels) {
    return absl::InvalidArgumentError(
        absl::StrCat("the VAE (", options_.vae_dir, ") has ",
                     vc.latent_channels, " latent channels but the DiT (",
                     options_.dit_dir, ") takes ", dc.in_channels));
  }
  if (encoder_->config().hidden_size != dc.cap_feat_dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the text encoder (", options_.text_encoder_dir, ") is ",
        encoder_->config().hidden_size, " wide but the DiT (", options_.dit_dir,
        ") takes ", dc.cap_feat_dim, "-wide captions"));
  }
  return absl::OkStatus();
}

absl::Status Pipeline::EnsureModels(torch::ScalarType dtype) {
  if (dtype != dtype_) {
    encoder_.reset();
    dit_ = nullptr;
    vae_.reset();
    dtype_ = dtype;
  }
  try {
    if (!tokenizer_) {
      LVS_ASSIGN_OR_RETURN(tokenizer_,
                           text_encoder::Tokenizer::Create(
                               options_.text_encoder_dir + "/tokenizer.model"));
    }
    if (!encoder_) {
      text_encoder::TextEncoderOptions o;
      o.dtype = dtype;
      o.device = device_;
      LVS_ASSIGN_OR_RETURN(encoder_, text_encoder::Gemma2Encoder::Create(
                                         options_.text_encoder_dir, o));
    }
    if (!dit_) {
      LVS_ASSIGN_OR_RETURN(dit_, LoadDiTFrom(dit_dir_, dit_use_ema_, dtype));
    }
    if (!vae_) {
      vae::VaeOptions o;
      o.dtype = dtype;
      o.device = device_;
      o.tiling = options_.vae_tiling;
      LVS_ASSIGN_OR_RETURN(vae_, vae::CogVideoXVae::Create(vae_dir_, o));
    }
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e, "loading the models");
  }
  return absl::OkStatus();
}

absl::StatusOr<dit::MultiScaleNextDiT> Pipeline::LoadDiTFrom(
    const std::string& dir, bool use_ema, torch::ScalarType dtype) const {
  dit::DiTLoadOptions o;
  o.dtype = dtype;
  o.device = device_;
  if (!use_ema) return dit::LoadDiT(dir, o);
  LVS_ASSIGN_OR_RETURN(dit::DiTConfig config, dit::LoadDiTConfig(dir));
  const std::string path = dir + "/consolidated_ema.00-of-01.safetensors";
  LVS_ASSIGN_OR_RETURN(io::TensorMap tensors, io::LoadSafetensors(path));
  return dit::BuildDiT(config, tensors, o, path);
}

absl::Status Pipeline::ReloadDiT(const std::string& dir, bool use_ema) {
  return Reload(dir, use_ema, "");
}

absl::Status Pipeline::Reload(const std::string& dir, bool use_ema,
                              const std::string& vae_dir) {
  absl::MutexLock lock(&mu_);
  dit::MultiScaleNextDiT loaded = nullptr;
  std::unique_ptr<vae::CogVideoXVae> vae;
  try {
    LVS_ASSIGN_OR_RETURN(loaded, LoadDiTFrom(dir, use_ema, dtype_));
    if (!vae_dir.empty()) {
      vae::VaeOptions o;
      o.dtype = dtype_;
      o.device = device_;
      o.tiling = options_.vae_tiling;
      LVS_ASSIGN_OR_RETURN(vae, vae::CogVideoXVae::Create(vae_dir, o));
    }
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e, absl::StrCat("loading ", dir));
  }
  const dit::DiTConfig& now = dit_->config();
  const dit::DiTConfig& next = loaded->config();
  const int64_t channels =
      vae ? vae->config().latent_channels : limits_.latent_channels;
  if (next.in_channels != channels || next.cap_feat_dim != now.cap_feat_dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir, ": DiT takes ", next.in_channels, " latent channels and ",
        next.cap_feat_dim, "-wide captions; the pipeline needs ", channels,
        vae ? absl::StrCat(" (the VAE ", vae_dir, ")") : "", " and ",
        now.cap_feat_dim));
  }
  if (vae &&
      (vae->config().SpatialCompressionRatio() != limits_.spatial_factor ||
       vae->config().temporal_compression_ratio != limits_.temporal_factor)) {
    return absl::InvalidArgumentError(absl::StrCat(
        vae_dir, ": VAE compresses ", vae->config().SpatialCompressionRatio(),
        "x spatially and ", vae->config().temporal_compression_ratio,
        "x in time; the pipeline serves ", limits_.spatial_factor, "x and ",
        limits_.temporal_factor, "x"));
  }
  // limits_ (and what a worker advertised from them) stay valid only while
  // the patch combinations do.
  std::vector<std::string> now_patches = now.patch_keys();
  std::vector<std::string> next_patches = next.patch_keys();
  std::sort(now_patches.begin(), now_patches.end());
  std::sort(next_patches.begin(), next_patches.end());
  if (next_patches != now_patches) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": DiT has the patch combinations ",
                     absl::StrJoin(next_patches, ","), "; the pipeline serves ",
                     absl::StrJoin(now_patches, ",")));
  }
  dit_ = loaded;
  dit_dir_ = dir;
  dit_use_ema_ = use_ema;
  if (vae) {
    vae_ = std::move(vae);
    vae_dir_ = vae_dir;
    limits_.latent_channels = channels;
  }
  return absl::OkStatus();
}

absl::StatusOr<GenerationPlan> Pipeline::Plan(
    const GenerationRequest& request) const {
  LVS_ASSIGN_OR_RETURN(
      GenerationPlan plan,
      PlanGeneration(request, limits_, DefaultsToBf16(device_)));
  return plan;
}

absl::StatusOr<GenerationResult> Pipeline::Generate(
    const GenerationRequest& request, const PipelineCallbacks& callbacks,
    const torch::Tensor& z, GenerationTrace* trace) {
  LVS_ASSIGN_OR_RETURN(GenerationPlan plan, Plan(request));
  absl::MutexLock lock(&mu_);
  try {
    return Run(plan, callbacks, z, trace);
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e, "generation");
  }
}

absl::StatusOr<GenerationResult> Pipeline::Run(
    const GenerationPlan& plan, const PipelineCallbacks& callbacks,
    const torch::Tensor& z_in, GenerationTrace* trace) {
  torch::NoGradGuard no_grad;
  GenerationResult result;
  result.plan = plan;
  const auto job_start = Clock::now();
  auto stage = [&](const char* name, Clock::time_point start) {
    StageReport r{name, SecondsSince(start), PeakRssBytes(),
                  CudaPeakBytes(device_)};
    result.stages.push_back(r);
    if (callbacks.on_stage) callbacks.on_stage(r);
    ResetPeakMemory(device_);
  };

  auto start = Clock::now();
  ResetPeakMemory(device_);
  const bool loads =
      !encoder_ || !dit_ || !vae_ || dtype_ != DtypeOf(plan.precision);
  LVS_RETURN_IF_ERROR(EnsureModels(DtypeOf(plan.precision)));
  const std::vector<int64_t> shape(plan.latent_shape.begin(),
                                   plan.latent_shape.end());
  LVS_RETURN_IF_ERROR(CheckSampleConfigForDiT(plan.config, dit_, shape));
  LVS_ASSIGN_OR_RETURN(
      result.plan.output_frames,
      vae::DecodedFrameCount(vae_->config(), plan.latent_frames));
  if (callbacks.on_plan) callbacks.on_plan(result.plan);
  if (callbacks.cancelled && callbacks.cancelled()) {
    return absl::CancelledError("generation cancelled before it started");
  }
  if (loads) stage("load", start);

  start = Clock::now();
  LVS_ASSIGN_OR_RETURN(auto text, EncodeText(plan, callbacks, trace));
  stage("text", start);

  start = Clock::now();
  torch::Tensor z;
  if (z_in.defined()) {
    if (!z_in.sizes().equals(shape)) {
      return absl::InvalidArgumentError(
          absl::StrCat("z: shape ", c10::str(z_in.sizes()), ", the plan needs ",
                       c10::str(torch::IntArrayRef(shape))));
    }
    z = z_in.to(device_, dtype_);
  } else {
    z = sampler::InitialNoise(plan.request.seed, shape, dtype_, device_);
  }
  sampler::SamplerOptions so;
  so.dtype = dtype_;
  so.grid_points = plan.grid_points;
  so.keep_states = trace != nullptr;
  so.on_step = callbacks.on_step;
  so.cancelled = callbacks.cancelled;
  auto counts = std::make_shared<ForwardCounts>();
  const double threshold = plan.request.cache_threshold;
  sampler::VelocityFn velocity =
      threshold > 0 ? CachedDiTVelocity(dit_, threshold, z.size(0),
                                        plan.grid_points - 1, counts)
                    : DiTVelocity(dit_);
  if (group_) {
    LVS_ASSIGN_OR_RETURN(
        velocity, group_->Velocity(dit_, UsesGuidance(plan.config), threshold,
                                   z.size(0), plan.grid_points - 1, counts));
  }
  LVS_ASSIGN_OR_RETURN(
      sampler::SampleResult sampled,
      sampler::SampleFlow(velocity, plan.config, z,
                          sampler::Guidance{text.first, text.second}, so));
  text = {};
  if (threshold > 0 || group_) {
    result.dit_forwards_computed = counts->computed;
    result.dit_forwards_cached = counts->cached;
  } else {
    for (const sampler::ModelCall& call : sampled.calls) {
      result.dit_forwards_computed += call.guided() ? 2 : 1;
    }
  }
  stage("sample", start);

  start = Clock::now();
  const torch::Tensor final_latent = sampled.latent.narrow(0, 0, 1);
  if (trace) {
    trace->calls = sampled.calls;
    for (const torch::Tensor& s : sampled.states) {
      trace->states.push_back(s.narrow(0, 0, 1).to(torch::kCPU));
    }
    trace->final_latent = final_latent.to(torch::kCPU);
  }
  sampled = {};
  LVS_ASSIGN_OR_RETURN(result.frames,
                       Decode(plan, final_latent, callbacks, trace));
  stage("decode", start);
  result.seconds = SecondsSince(job_start);
  return result;
}

absl::StatusOr<std::pair<torch::Tensor, torch::Tensor>> Pipeline::EncodeText(
    const GenerationPlan& plan, const PipelineCallbacks& callbacks,
    GenerationTrace* trace) {
  const auto start = Clock::now();
  const std::vector<std::string> texts = {
      options_.system_prompt + plan.request.prompt,
      options_.system_prompt + plan.request.negative_prompt};
  LVS_ASSIGN_OR_RETURN(text_encoder::TokenizedBatch batch,
                       tokenizer_->Encode(texts));
  LVS_ASSIGN_OR_RETURN(
      torch::Tensor feats,
      encoder_->EncodePromptEmbeds(batch.input_ids, batch.attention_mask));
  torch::Tensor mask = batch.attention_mask.to(device_);
  if (trace) {
    trace->input_ids = batch.input_ids;
    trace->attention_mask = batch.attention_mask;
    trace->cap_feats = feats.to(torch::kCPU, torch::kFloat32);
  }
  if (options_.release_text_encoder) encoder_.reset();
  TextEncodedEvent event;
  event.tokens = batch.attention_mask.sum().item<int64_t>();
  event.padded_length = batch.input_ids.size(1);
  for (bool t : batch.truncated) event.truncated = event.truncated || t;
  event.seconds = SecondsSince(start);
  if (callbacks.on_text_encoded) callbacks.on_text_encoded(event);
  return std::make_pair(feats, mask);
}

absl::StatusOr<int64_t> Pipeline::Decode(const GenerationPlan& plan,
                                         const torch::Tensor& latent,
                                         const PipelineCallbacks& callbacks,
                                         GenerationTrace* trace) {
  if (callbacks.cancelled && callbacks.cancelled()) {
    return absl::CancelledError("generation cancelled before decoding");
  }
  // [1, C, n, h, w] float32 -> run dtype, as `(latent / scale).to(dtype)`.
  const torch::Tensor vae_input = (latent / kVaeScaleFactor).to(dtype_);
  if (trace) trace->vae_input = vae_input.to(torch::kCPU);
  const int64_t total = plan.output_frames > 0 ? plan.output_frames : 0;
  int64_t done = 0;
  std::vector<torch::Tensor> all_frames;
  auto on_chunk = [&](const torch::Tensor& chunk) -> absl::Status {
    torch::Tensor frames = ToUint8Frames(chunk);
    if (trace) all_frames.push_back(frames);
    if (callbacks.on_frames) {
      FramesEvent e;
      e.first_frame = done;
      e.count = frames.size(0);
      e.total = total;
      e.height = static_cast<int>(frames.size(1));
      e.width = static_cast<int>(frames.size(2));
      e.rgb = absl::MakeConstSpan(frames.data_ptr<uint8_t>(),
                                  static_cast<size_t>(frames.numel()));
      LVS_RETURN_IF_ERROR(callbacks.on_frames(e));
    }
    done += frames.size(0);
    if (callbacks.cancelled && callbacks.cancelled() && done < total) {
      return absl::CancelledError(
          absl::StrCat("generation cancelled while decoding, after ", done,
                       " of ", total, " frames"));
    }
    return absl::OkStatus();
  };
  torch::Tensor decoded;
  if (group_ && options_.vae_tiling.enabled) {
    LVS_ASSIGN_OR_RETURN(auto helpers, group_->VaeHelpers(*vae_));
    LVS_ASSIGN_OR_RETURN(decoded,
                         vae_->DecodeParallel(vae_input, helpers, on_chunk));
  } else {
    LVS_ASSIGN_OR_RETURN(decoded, vae_->Decode(vae_input, on_chunk));
  }
  if (trace) {
    trace->decoded = decoded[0].to(torch::kCPU, torch::kFloat32);
    trace->frames = torch::cat(all_frames, 0);
  }
  return done;
}

int64_t Pipeline::DeviceMemoryInUse() const {
  return CudaAllocatedBytes(device_);
}

}  // namespace lvs::pipeline
