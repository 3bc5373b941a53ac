#include "tools/lvs_model/generate.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "model/media/video_encoder.h"
#include "model/pipeline/pipeline.h"
#include "model/sampler/checkpoint_defaults.h"
#include "model/sampler/sample_config.h"
#include "nlohmann/json.hpp"

namespace lvs::generate {
namespace {

struct GenerateFlags {
  pipeline::PipelineOptions pipeline;
  pipeline::GenerationRequest request;
  std::string resolution = "1248x704";
  std::string precision;
  std::string output = "out.mp4";
  int crf = 18;
  std::string preset = "medium";
  bool tile_vae = false;
  bool sample_config_given = false;
};

// A checkpoint's own generation defaults: `<dit>/sample_config.json` (the
// sample_config.h JSON form), used when --sample-config is not given.
absl::Status ApplyCheckpointDefaults(GenerateFlags& f) {
  if (f.sample_config_given) return absl::OkStatus();
  absl::StatusOr<std::optional<sampler::SampleConfig>> config =
      sampler::CheckpointSampleConfig(f.pipeline.dit_dir);
  if (!config.ok()) return config.status();
  if (!config->has_value()) return absl::OkStatus();
  f.request.config = **config;
  std::fprintf(stderr, "sample config: %s/%s (the checkpoint's default)\n",
               f.pipeline.dit_dir.c_str(),
               sampler::kCheckpointSampleConfigFile);
  return absl::OkStatus();
}

std::string Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::lround(seconds));
  return absl::StrFormat("%02d:%02d", s / 60, s % 60);
}

std::string Bytes(int64_t bytes) {
  return absl::StrFormat("%.1f MiB", bytes / 1048576.0);
}

// Draws the step progress bar on stderr (one line per step when stderr is
// not a terminal).
void DrawStep(const sampler::StepInfo& s) {
  const int done = s.index + 1;
  const int width = 30;
  const int filled =
      s.denoise_steps > 0 ? width * done / s.denoise_steps : width;
  const double rate = s.elapsed_s > 0 ? done / s.elapsed_s : 0;
  const double eta = rate > 0 ? (s.denoise_steps - done) / rate : 0;
  const std::string bar =
      std::string(filled, '#') + std::string(width - filled, '.');
  const bool tty = isatty(STDERR_FILENO);
  std::fprintf(stderr, "%s[%s] step %d/%d  t=%.4f %s%s  %.2f it/s  ETA %s%s",
               tty ? "\r" : "", bar.c_str(), done, s.denoise_steps, s.t,
               s.patch.ToString().c_str(), s.guided ? " cfg" : "    ", rate,
               Duration(eta).c_str(),
               tty && done < s.denoise_steps ? "" : "\n");
  std::fflush(stderr);
}

// The limits known before loading: the pipeline's defaults with this run's
// pixel budget (the checkpoint adds its patch combinations).
pipeline::ModelLimits PreloadLimits(const GenerateFlags& f) {
  pipeline::ModelLimits limits;
  limits.max_resolution = f.pipeline.max_resolution;
  return limits;
}

// Checks that `path` can be written (creating it, then removing what the
// check created), so a bad -o fails before any model loads.
absl::Status CheckWritable(const std::string& path) {
  const bool existed = std::filesystem::exists(path);
  {
    std::ofstream probe(path, std::ios::app | std::ios::binary);
    if (!probe) {
      return absl::InvalidArgumentError(absl::StrCat(
          "-o: cannot write '", path, "': ", std::strerror(errno)));
    }
  }
  if (!existed) std::filesystem::remove(path);
  return absl::OkStatus();
}

absl::Status Run(GenerateFlags& f) {
  LVS_RETURN_IF_ERROR(ApplyCheckpointDefaults(f));
  LVS_ASSIGN_OR_RETURN(auto wh, pipeline::ParseResolution(f.resolution));
  f.request.width = wh[0];
  f.request.height = wh[1];
  LVS_ASSIGN_OR_RETURN(f.request.precision,
                       pipeline::ParsePrecision(f.precision));
  // Every argument is checked before minutes of loading and denoising: the
  // request against the pipeline's general limits (the loaded checkpoint's
  // patches are checked again after loading), then the output.
  LVS_RETURN_IF_ERROR(
      pipeline::PlanGeneration(f.request, PreloadLimits(f),
                               f.pipeline.device.rfind("cuda", 0) == 0)
          .status());
  LVS_RETURN_IF_ERROR(CheckWritable(f.output));
  f.pipeline.precision = f.request.precision;
  f.pipeline.vae_tiling.enabled = f.tile_vae;
  std::fprintf(stderr, "loading models on %s ...\n", f.pipeline.device.c_str());
  LVS_ASSIGN_OR_RETURN(auto pipe, pipeline::Pipeline::Create(f.pipeline));
  const pipeline::StageReport& load = pipe->load_report();
  std::fprintf(stderr, "loaded in %.1f s (peak RSS %s)\n", load.seconds,
               Bytes(load.peak_rss_bytes).c_str());

  std::unique_ptr<media::VideoEncoder> encoder;
  pipeline::PipelineCallbacks cb;
  cb.on_plan = [&](const pipeline::GenerationPlan& p) {
    std::fprintf(stderr,
                 "plan: %dx%d, %d frames requested -> %lld latent frames -> "
                 "%lld output frames at %d fps, %s, %d steps (%d model "
                 "calls), seed %llu, %s\n",
                 p.request.width, p.request.height, p.request.frames,
                 static_cast<long long>(p.latent_frames),
                 static_cast<long long>(p.output_frames), p.request.fps,
                 p.config.name.c_str(), p.grid_points, p.grid_points - 1,
                 static_cast<unsigned long long>(p.request.seed),
                 pipeline::PrecisionName(p.precision).c_str());
  };
  cb.on_text_encoded = [](const pipeline::TextEncodedEvent& e) {
    std::fprintf(
        stderr, "text encoded: %lld tokens (padded to %lld)%s in %.2f s\n",
        static_cast<long long>(e.tokens),
        static_cast<long long>(e.padded_length),
        e.truncated ? ", truncated to the tokenizer's limit" : "", e.seconds);
  };
  cb.on_step = DrawStep;
  cb.on_frames = [&](const pipeline::FramesEvent& e) -> absl::Status {
    if (!encoder) {
      media::VideoEncoderOptions vo;
      vo.width = e.width;
      vo.height = e.height;
      vo.fps_num = f.request.fps;
      vo.crf = f.crf;
      vo.preset = f.preset;
      LVS_ASSIGN_OR_RETURN(
          encoder, media::VideoEncoder::CreateFile(
                       vo, f.output, media::Mp4FileLayout::kPlainFaststart));
    }
    const size_t frame_bytes = static_cast<size_t>(e.width) * e.height * 3;
    for (int64_t i = 0; i < e.count; ++i) {
      LVS_RETURN_IF_ERROR(
          encoder->AddFrame(e.rgb.subspan(i * frame_bytes, frame_bytes)));
    }
    std::fprintf(stderr, "decoded and encoded frames %lld-%lld of %lld\n",
                 static_cast<long long>(e.first_frame + 1),
                 static_cast<long long>(e.first_frame + e.count),
                 static_cast<long long>(e.total));
    return absl::OkStatus();
  };
  LVS_ASSIGN_OR_RETURN(pipeline::GenerationResult result,
                       pipe->Generate(f.request, cb));
  if (!encoder) return absl::InternalError("no frames were decoded");
  LVS_RETURN_IF_ERROR(encoder->Finish());

  std::printf("wrote %s: %lld frames, %dx%d, %d fps, %lld bytes\n",
              f.output.c_str(), static_cast<long long>(result.frames),
              encoder->output_width(), encoder->output_height(), f.request.fps,
              static_cast<long long>(encoder->stats().bytes));
  std::printf("%-8s %10s %14s %14s\n", "stage", "seconds", "peak RSS",
              "peak CUDA");
  for (const pipeline::StageReport& s : result.stages) {
    std::printf("%-8s %10.2f %14s %14s\n", s.name.c_str(), s.seconds,
                Bytes(s.peak_rss_bytes).c_str(),
                Bytes(s.cuda_peak_bytes).c_str());
  }
  std::printf("%-8s %10.2f\n", "total", result.seconds);
  std::printf("DiT forwards: %lld computed, %lld cached (threshold %g)\n",
              static_cast<long long>(result.dit_forwards_computed),
              static_cast<long long>(result.dit_forwards_cached),
              f.request.cache_threshold);
  return absl::OkStatus();
}

}  // namespace

void AddGenerateCommand(CLI::App& app) {
  auto f = std::make_shared<GenerateFlags>();
  CLI::App* cmd =
      app.add_subcommand("generate", "Generate a video offline (in-process)");
  cmd->add_option("--dit", f->pipeline.dit_dir, "DiT checkpoint directory")
      ->required();
  cmd->add_option("--text-encoder", f->pipeline.text_encoder_dir,
                  "Gemma-2 directory (Hugging Face layout)")
      ->required();
  cmd->add_option("--vae", f->pipeline.vae_dir,
                  "CogVideoX VAE directory (diffusers layout)")
      ->required();
  cmd->add_option("--prompt", f->request.prompt, "Text prompt")->required();
  cmd->add_option("--negative", f->request.negative_prompt,
                  "Negative prompt (default empty)");
  cmd->add_option("--resolution", f->resolution, "WxH, multiples of 32");
  cmd->add_option("--frames", f->request.frames, "Requested frames");
  cmd->add_option("--fps", f->request.fps, "Frames per second");
  cmd->add_option("--sample-config", f->request.sample_config,
                  "Sample config name (default: <dit>/sample_config.json "
                  "when present, else f24F96R960-MultiScale)");
  cmd->add_option("--steps", f->request.grid_points,
                  "Grid points (0: the config's)");
  cmd->add_option("--seed", f->request.seed, "Noise seed");
  cmd->add_option("--cache-threshold", f->request.cache_threshold,
                  "Step caching: reuse the DiT's later blocks while the first "
                  "block's input changes by less than this (0 = off, <= 1)");
  cmd->add_option("--precision", f->precision,
                  "bf16 or fp32 (default: bf16 on CUDA, fp32 on CPU)");
  cmd->add_option("--device", f->pipeline.device, "cpu or cuda[:N]");
  cmd->add_option("--devices", f->pipeline.devices,
                  "several devices, e.g. cuda:0,cuda:1 (CFG- and "
                  "sequence-parallel DiT, VAE tiles spread with --tile-vae)")
      ->delimiter(',');
  cmd->add_option("-o,--output", f->output, "Output MP4 path");
  cmd->add_option("--crf", f->crf, "x264 CRF [0, 51]")
      ->check(CLI::Range(0, 51));
  cmd->add_option("--preset", f->preset, "x264 preset")
      ->check(
          CLI::IsMember({"ultrafast", "superfast", "veryfast", "faster", "fast",
                         "medium", "slow", "slower", "veryslow", "placebo"}));
  cmd->add_flag("--tile-vae", f->tile_vae, "Decode the VAE in spatial tiles");
  cmd->add_flag("--release-text-encoder", f->pipeline.release_text_encoder,
                "Free the text encoder after encoding");
  cmd->callback([f, cmd] {
    f->sample_config_given = cmd->count("--sample-config") > 0;
    absl::Status s = Run(*f);
    if (!s.ok()) {
      std::fprintf(stderr, "lvs-model generate: %s\n", s.ToString().c_str());
      throw CLI::RuntimeError(
          s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1);
    }
  });
}

}  // namespace lvs::generate
