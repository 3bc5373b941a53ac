#include "trainer/vae_trainer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/common/torch_status.h"
#include "model/io/safetensors.h"
#include "model/io/state_dict.h"
#include "model/io/torch_tensors.h"
#include "model/media/video_decoder.h"
#include "tools/lvs_extract/item_list.h"

namespace lvs::trainer {
namespace {

absl::Status FieldError(const std::string& field, const std::string& rule) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", rule));
}

// Encoder moments -> (mean, logvar) as CogVideoXVae::Encode.
std::pair<torch::Tensor, torch::Tensor> Moments(vae::VaeModel& model,
                                                const torch::Tensor& x,
                                                int64_t z) {
  vae::CausalCache cache;
  torch::Tensor h = model->encoder->forward(x, cache);  // [B, 2Z, t, h, w]
  return {h.narrow(1, 0, z), h.narrow(1, z, z).clamp(-30.0, 20.0)};
}

torch::Tensor DecodeAll(vae::VaeModel& model, const torch::Tensor& z) {
  vae::CausalCache cache;
  std::vector<torch::Tensor> frames;
  for (const auto& [start, length] : vae::DecodeChunks(z.size(2))) {
    frames.push_back(
        model->decoder->forward(z.narrow(2, start, length), cache));
  }
  return torch::cat(frames, 2);  // [B, 3, T, H, W]
}

// uint8 [T, H, W, 3] -> float [1, 3, T, H, W] in [-1, 1].
torch::Tensor ToVideo(const torch::Tensor& clip) {
  return clip.permute({3, 0, 1, 2}).unsqueeze(0).to(torch::kFloat32) / 127.5 -
         1.0;
}

}  // namespace

bool IsVaeSpec(const nlohmann::json& json) {
  if (!json.is_object() || !json.contains("model_type") ||
      !json["model_type"].is_string()) {
    return false;
  }
  const std::string type = json["model_type"].get<std::string>();
  return type == "vae" || type == "MODEL_TYPE_VAE";
}

absl::StatusOr<VaeTrainSpec> VaeTrainSpecFromJson(const nlohmann::json& json) {
  VaeTrainSpec s;
  if (!json.is_object()) return FieldError("spec", "not a JSON object");
  try {
    auto get = [&](const char* key, auto* out) {
      if (json.contains(key) && !json[key].is_null()) json[key].get_to(*out);
    };
    get("records", &s.records);
    get("heldout", &s.heldout);
    if (json.contains("vae_config")) s.vae_config = json["vae_config"];
    get("init_from", &s.init_from);
    get("batch_size", &s.batch_size);
    get("crop_size", &s.crop_size);
    get("max_frames", &s.max_frames);
    get("learning_rate", &s.learning_rate);
    get("weight_decay", &s.weight_decay);
    get("warmup_steps", &s.warmup_steps);
    get("l1_weight", &s.l1_weight);
    get("mse_weight", &s.mse_weight);
    get("kl_weight", &s.kl_weight);
    get("grad_clip", &s.grad_clip);
    get("ema_decay", &s.ema_decay);
    get("max_steps", &s.max_steps);
    get("checkpoint_interval", &s.checkpoint_interval);
    get("seed", &s.seed);
  } catch (const nlohmann::json::exception& e) {
    return FieldError("spec", absl::StrCat("wrong JSON type: ", e.what()));
  }
  if (absl::Status st = ValidateVaeTrainSpec(s); !st.ok()) return st;
  return s;
}

absl::Status ValidateVaeTrainSpec(const VaeTrainSpec& s) {
  if (s.records.empty()) return FieldError("records", "at least one list");
  if (s.vae_config.is_null() == s.init_from.empty()) {
    return FieldError("vae_config",
                      "set exactly one of vae_config and init_from");
  }
  if (s.batch_size <= 0) return FieldError("batch_size", "must be positive");
  if (s.crop_size <= 0) return FieldError("crop_size", "must be positive");
  // An odd number of latent frames (1 + 2k): the decoder's first chunk of
  // an even number decodes 4 frames per latent, not 1 + 4 (k - 1).
  if (s.max_frames < 9 || (s.max_frames - 1) % 8 != 0) {
    return FieldError("max_frames",
                      "must be 1 + 8k with k >= 1 (9, 17, 25, ...: an odd "
                      "number of latent frames)");
  }
  if (!(s.learning_rate > 0)) return FieldError("learning_rate", "must be > 0");
  if (s.weight_decay < 0) return FieldError("weight_decay", "must be >= 0");
  if (s.warmup_steps < 0) return FieldError("warmup_steps", "must be >= 0");
  if (s.l1_weight < 0 || s.mse_weight < 0 || s.l1_weight + s.mse_weight <= 0) {
    return FieldError("l1_weight", "l1_weight, mse_weight >= 0, one > 0");
  }
  if (s.kl_weight < 0) return FieldError("kl_weight", "must be >= 0");
  if (!(s.grad_clip > 0)) return FieldError("grad_clip", "must be > 0");
  if (!(s.ema_decay >= 0 && s.ema_decay < 1)) {
    return FieldError("ema_decay", "must be in [0, 1)");
  }
  if (s.max_steps <= 0) return FieldError("max_steps", "must be positive");
  if (s.checkpoint_interval < 0) {
    return FieldError("checkpoint_interval", "must be >= 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<double> HeldoutPsnr(const VaeTrainSpec& spec,
                                   const std::string& dir, int64_t* clips) {
  LVS_ASSIGN_OR_RETURN(std::vector<torch::Tensor> loaded,
                       LoadClips(spec.heldout));
  LVS_ASSIGN_OR_RETURN(std::unique_ptr<vae::CogVideoXVae> vae,
                       vae::CogVideoXVae::Create(dir, {}));
  if (clips != nullptr) *clips = static_cast<int64_t>(loaded.size());
  return ReconstructionPsnr(*vae, loaded);
}

absl::StatusOr<std::vector<torch::Tensor>> LoadClips(
    const std::vector<std::string>& lists) {
  std::vector<torch::Tensor> clips;
  for (const std::string& list : lists) {
    LVS_ASSIGN_OR_RETURN(std::vector<nlohmann::json> items,
                         tools::ReadItems(list));
    for (const nlohmann::json& item : items) {
      const std::string path =
          tools::ResolvePath(list, item.value("path", std::string()));
      LVS_ASSIGN_OR_RETURN(std::unique_ptr<media::VideoDecoder> dec,
                           media::VideoDecoder::OpenFile(path));
      LVS_ASSIGN_OR_RETURN(std::vector<media::RgbFrame> frames,
                           dec->DecodeAll());
      if (frames.empty()) return absl::InvalidArgumentError(path + ": empty");
      const int64_t h = frames[0].height, w = frames[0].width;
      torch::Tensor clip = torch::empty(
          {static_cast<int64_t>(frames.size()), h, w, 3}, torch::kUInt8);
      for (size_t t = 0; t < frames.size(); ++t) {
        std::memcpy(clip[t].data_ptr(), frames[t].rgb.data(), h * w * 3);
      }
      clips.push_back(clip);
    }
  }
  return clips;
}

absl::StatusOr<double> ReconstructionPsnr(
    const vae::CogVideoXVae& vae, const std::vector<torch::Tensor>& clips) {
  if (clips.empty()) return absl::InvalidArgumentError("no clips to evaluate");
  double sum = 0;
  for (const torch::Tensor& clip : clips) {
    const int64_t t = 1 + (clip.size(0) - 1) / 4 * 4;
    const torch::Tensor video = ToVideo(clip.narrow(0, 0, t));
    LVS_ASSIGN_OR_RETURN(vae::LatentDist dist, vae.Encode(video));
    LVS_ASSIGN_OR_RETURN(torch::Tensor rec, vae.Decode(dist.Mode()));
    torch::NoGradGuard no_grad;
    // Pixels in [0, 255] as the video would store them.
    const torch::Tensor a = ((video + 1) * 127.5).round();
    const torch::Tensor b = ((rec.clamp(-1, 1) + 1) * 127.5).round();
    const double mse = (a - b).pow(2).mean().item<double>();
    sum += 10.0 * std::log10(255.0 * 255.0 / std::max(mse, 1e-10));
  }
  return sum / clips.size();
}

VaeTrainer::VaeTrainer(VaeTrainSpec spec, vae::VaeConfig config,
                       torch::Device device, vae::VaeModel model,
                       vae::VaeModel ema, std::vector<torch::Tensor> clips)
    : spec_(std::move(spec)),
      config_(std::move(config)),
      device_(device),
      model_(std::move(model)),
      ema_(std::move(ema)),
      clips_(std::move(clips)) {
  torch::optim::AdamWOptions opt(spec_.learning_rate);
  opt.betas({0.9, 0.99}).weight_decay(spec_.weight_decay);
  optimizer_ = std::make_unique<torch::optim::AdamW>(model_->parameters(), opt);
}

absl::StatusOr<std::unique_ptr<VaeTrainer>> VaeTrainer::Create(
    const VaeTrainSpec& spec, torch::Device device) {
  vae::VaeConfig config;
  io::TensorMap init;
  if (spec.init_from.empty()) {
    LVS_ASSIGN_OR_RETURN(
        config, vae::ParseVaeConfig(spec.vae_config.dump(), "vae_config"));
  } else {
    LVS_ASSIGN_OR_RETURN(config,
                         vae::ReadVaeConfig(spec.init_from + "/config.json"));
    LVS_ASSIGN_OR_RETURN(
        init, io::LoadSafetensors(spec.init_from +
                                  "/diffusion_pytorch_model.safetensors"));
  }
  const int64_t factor = config.SpatialCompressionRatio();
  if (spec.crop_size % factor != 0) {
    return FieldError("crop_size", absl::StrCat("must be a multiple of the "
                                                "VAE's spatial factor ",
                                                factor));
  }
  LVS_ASSIGN_OR_RETURN(std::vector<torch::Tensor> clips,
                       LoadClips(spec.records));
  for (const torch::Tensor& c : clips) {
    if (c.size(0) < spec.max_frames || c.size(1) < spec.crop_size ||
        c.size(2) < spec.crop_size) {
      return FieldError(
          "records", absl::StrCat("a clip of ", c.size(0), "x", c.size(1), "x",
                                  c.size(2), " is smaller than the crop"));
    }
  }
  try {
    torch::manual_seed(static_cast<uint64_t>(spec.seed));
    vae::VaeModel model(config), ema(config);
    if (!init.empty()) {
      LVS_RETURN_IF_ERROR(io::LoadStateDict(*model, init, {}, spec.init_from));
    }
    model->to(device);
    ema->to(device);
    {
      torch::NoGradGuard no_grad;
      auto src = model->parameters(), dst = ema->parameters();
      for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
    }
    model->train();
    ema->eval();
    return std::unique_ptr<VaeTrainer>(
        new VaeTrainer(spec, config, device, std::move(model), std::move(ema),
                       std::move(clips)));
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e, "building the VAE to train");
  }
}

double VaeTrainer::LearningRate(int64_t step) const {
  if (step < spec_.warmup_steps) {
    return spec_.learning_rate * (step + 1) / (spec_.warmup_steps + 1);
  }
  const double span =
      std::max<int64_t>(1, spec_.max_steps - spec_.warmup_steps);
  const double p = std::min(1.0, (step - spec_.warmup_steps) / span);
  return spec_.learning_rate * (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * p)));
}

torch::Tensor VaeTrainer::SampleBatch(int64_t step) const {
  std::mt19937_64 rng(static_cast<uint64_t>(spec_.seed) * 1000003u +
                      static_cast<uint64_t>(step));
  std::vector<torch::Tensor> batch;
  for (int64_t b = 0; b < spec_.batch_size; ++b) {
    const torch::Tensor& clip = clips_[rng() % clips_.size()];
    const int64_t t0 = rng() % (clip.size(0) - spec_.max_frames + 1);
    const int64_t y0 = rng() % (clip.size(1) - spec_.crop_size + 1);
    const int64_t x0 = rng() % (clip.size(2) - spec_.crop_size + 1);
    // [T, H, W, 3] -> crop [t, c, c, 3]
    torch::Tensor crop = clip.narrow(0, t0, spec_.max_frames)
                             .narrow(1, y0, spec_.crop_size)
                             .narrow(2, x0, spec_.crop_size);
    if (rng() % 2) crop = crop.flip({2});
    batch.push_back(ToVideo(crop));
  }
  return torch::cat(batch, 0).to(device_);  // [B, 3, t, c, c]
}

absl::StatusOr<StepStats> VaeTrainer::Step() {
  const auto start = std::chrono::steady_clock::now();
  StepStats st;
  st.step = next_step_;
  st.samples = spec_.batch_size;
  st.learning_rate = LearningRate(next_step_);
  try {
    for (auto& group : optimizer_->param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options())
          .lr(st.learning_rate);
    }
    const torch::Tensor x = SampleBatch(next_step_);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(
        static_cast<uint64_t>(spec_.seed) * 7919u + next_step_ + 1);
    optimizer_->zero_grad();
    auto [mean, logvar] = Moments(model_, x, config_.latent_channels);
    const torch::Tensor eps =
        at::randn(mean.sizes(), gen, torch::kFloat32).to(device_);
    const torch::Tensor z = mean + torch::exp(0.5 * logvar) * eps;
    const torch::Tensor rec = DecodeAll(model_, z);
    const torch::Tensor diff = rec - x;
    const torch::Tensor rec_loss = spec_.l1_weight * diff.abs().mean() +
                                   spec_.mse_weight * diff.pow(2).mean();
    const torch::Tensor kl =
        0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean();
    const torch::Tensor loss = rec_loss + spec_.kl_weight * kl;
    loss.backward();
    st.grad_norm = torch::nn::utils::clip_grad_norm_(model_->parameters(),
                                                     spec_.grad_clip);
    if (!std::isfinite(st.grad_norm)) {
      return absl::InternalError(
          absl::StrCat("VAE step ", next_step_ + 1, ": non-finite gradient"));
    }
    optimizer_->step();
    {
      torch::NoGradGuard no_grad;
      const double d =
          std::min(spec_.ema_decay, (1.0 + next_step_) / (10.0 + next_step_));
      auto src = model_->parameters(), dst = ema_->parameters();
      for (size_t i = 0; i < src.size(); ++i)
        dst[i].mul_(d).add_(src[i], 1 - d);
    }
    st.loss = loss.item<double>();
    st.task_loss["rec"] = rec_loss.item<double>();
    st.task_loss["kl"] = kl.item<double>();
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e, "VAE training step");
  }
  ++next_step_;
  st.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return st;
}

torch::Tensor FoldLatentScale(const std::string& name, torch::Tensor w,
                              int64_t latent_channels, double k) {
  if (absl::StartsWith(name, "encoder.conv_out.")) {
    // Moments [2C]: the means scale by k, the variances by k^2.
    w = w.clone();
    w.narrow(0, 0, latent_channels).mul_(k);
    if (absl::EndsWith(name, ".bias")) {
      w.narrow(0, latent_channels, latent_channels).add_(2.0 * std::log(k));
    }
    return w;
  }
  // Every decoder input that reads the latent is a convolution of it.
  const bool reads_latent = absl::StartsWith(name, "decoder.conv_in.") ||
                            (absl::StartsWith(name, "decoder.") &&
                             (absl::StrContains(name, ".conv_y.") ||
                              absl::StrContains(name, ".conv_b.")));
  if (reads_latent && absl::EndsWith(name, ".weight")) return w / k;
  return w;
}

absl::Status VaeTrainer::SaveCheckpoint(const std::string& dir) const {
  nlohmann::json config = spec_.vae_config;
  if (!spec_.init_from.empty()) {
    std::ifstream in(spec_.init_from + "/config.json");
    config = nlohmann::json::parse(in, nullptr, false);
  }
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  try {
    torch::NoGradGuard no_grad;
    // Latent scale: 1 / std of the EMA encoder's latent means over (up to
    // 32) whole training clips.
    std::vector<torch::Tensor> means;
    vae::VaeModel ema = ema_;
    for (size_t i = 0; i < clips_.size() && i < 32; ++i) {
      const torch::Tensor& c = clips_[i];
      const int64_t t = 1 + (c.size(0) - 1) / 4 * 4;
      means.push_back(Moments(ema, ToVideo(c.narrow(0, 0, t)).to(device_),
                              config_.latent_channels)
                          .first.flatten());
    }
    const double std_dev = torch::cat(means).std().item<double>();
    // The pipeline (like the reference) scales latents by the fixed
    // vae::kPipelineLatentScale, not by the config: fold the measured scale
    // into the weights so that mode() * vae::kPipelineLatentScale has unit std.
    const double k =
        1.0 / (std::max(std_dev, 1e-6) * vae::kPipelineLatentScale);
    config["scaling_factor"] = vae::kPipelineLatentScale;
    for (const auto& p : ema_->named_parameters()) {
      tensors.emplace_back(
          p.key(),
          FoldLatentScale(p.key(),
                          p.value().detach().to(torch::kCPU, torch::kFloat32),
                          config_.latent_channels, k)
              .contiguous());
    }
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e, "saving the VAE");
  }
  std::vector<io::TensorToWrite> out;
  for (const auto& [name, t] : tensors) {
    io::TensorToWrite w;
    w.name = name;
    w.dtype = io::DType::kF32;
    w.shape = t.sizes().vec();
    w.data = t.data_ptr();
    w.nbytes = t.numel() * sizeof(float);
    out.push_back(w);
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("creating ", dir, ": ", ec.message()));
  LVS_RETURN_IF_ERROR(
      io::WriteSafetensors(dir + "/diffusion_pytorch_model.safetensors", out));
  const std::string text = config.dump(2) + "\n";
  return io::WriteFileAtomically(dir + "/config.json", text.data(),
                                 text.size());
}

}  // namespace lvs::trainer
