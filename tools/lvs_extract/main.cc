// lvs-extract: VAE pre-extraction of a JSON/JSONL item list into sharded
// safetensors latents and JSONL records (see extract.h), and with
// --text-encoder the caption features of each item's `prompt` plus
// system_prompt.safetensors (see caption_encoder.h). Rerunning with the
// same --out resumes: recorded items are skipped.
//
// Usage: lvs-extract --items=list.jsonl --out=DIR --vae=VAE_DIR
//          [--text-encoder=GEMMA_DIR [--system-prompt=TEXT]
//           [--max-caption-tokens=256]]
//          [--image-size=256] [--target-fps=8] [--max-frames=0]
//          [--chunk-frames=32] [--shard-max-bytes=268435456]
//          [--device=cpu] [--dtype=float32|bfloat16]
// --device and --dtype apply to the VAE and the text encoder; caption
// features are stored in bfloat16 either way.
#include <torch/torch.h>

#include <cstdio>

#include "CLI/CLI.hpp"
#include "common/cli_parse.h"
#include "model/common/blas_check.h"
#include "model/pipeline/caption_encoder.h"
#include "tools/lvs_extract/extract.h"
#include "tools/lvs_extract/item_list.h"

namespace {

// Where the models are and how they run.
struct Models {
  std::string vae_dir;
  std::string text_encoder_dir;  // Empty: no caption features.
  std::string device = "cpu";
  std::string dtype = "float32";
  lvs::pipeline::CaptionEncoderOptions captions;
};

// The caption encoder on the VAE's device and precision; null without
// --text-encoder.
absl::StatusOr<std::unique_ptr<lvs::pipeline::CaptionEncoder>>
LoadCaptionEncoder(const Models& models, const lvs::vae::VaeOptions& vo) {
  if (models.text_encoder_dir.empty()) {
    return std::unique_ptr<lvs::pipeline::CaptionEncoder>();
  }
  lvs::pipeline::CaptionEncoderOptions co = models.captions;
  co.device = vo.device;
  co.dtype = vo.dtype;
  return lvs::pipeline::CaptionEncoder::Create(models.text_encoder_dir, co);
}

int Run(const std::string& items_path, const std::string& out,
        const Models& models, const lvs::tools::ExtractOptions& options) {
  absl::StatusOr<std::vector<nlohmann::json>> items =
      lvs::tools::ReadItems(items_path);
  if (!items.ok()) {
    std::fprintf(stderr, "lvs-extract: %s\n",
                 items.status().ToString().c_str());
    return 2;
  }
  lvs::vae::VaeOptions vo;
  vo.device = torch::Device(models.device);
  vo.dtype = models.dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
  absl::StatusOr<std::unique_ptr<lvs::vae::CogVideoXVae>> vae =
      lvs::vae::CogVideoXVae::Create(models.vae_dir, vo);
  if (!vae.ok()) {
    std::fprintf(stderr, "lvs-extract: %s\n", vae.status().ToString().c_str());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<lvs::pipeline::CaptionEncoder>> captions =
      LoadCaptionEncoder(models, vo);
  if (!captions.ok()) {
    std::fprintf(stderr, "lvs-extract: --text-encoder: %s\n",
                 captions.status().ToString().c_str());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<lvs::tools::Extractor>> ex =
      lvs::tools::Extractor::Open(out, vae->get(), options, captions->get());
  if (!ex.ok()) {
    std::fprintf(stderr, "lvs-extract: %s\n", ex.status().ToString().c_str());
    return 2;
  }
  lvs::tools::ToolProgress progress(stderr, items->size());
  int64_t unusable = 0;  // Skipped for what they are.
  int64_t already = 0;   // Skipped as extracted by an earlier run.
  for (size_t i = 0; i < items->size(); ++i) {
    const nlohmann::json& item = (*items)[i];
    const std::string path = item.value("path", std::string());
    if (path.empty()) {
      progress.Failed(absl::StrCat("item ", i), "no path field");
      continue;
    }
    if ((*ex)->Done(static_cast<int64_t>(i))) {
      progress.Skipped(path, "extracted by an earlier run");
      ++already;
      continue;
    }
    absl::StatusOr<std::optional<std::string>> r =
        (*ex)->Add(item, lvs::tools::ResolvePath(items_path, path),
                   static_cast<int64_t>(i));
    if (!r.ok()) {
      progress.Failed(path, std::string(r.status().message()));
    } else if (r->has_value()) {
      progress.Skipped(path, **r);
      ++unusable;
    } else {
      progress.Done(path);
    }
  }
  if (absl::Status s = (*ex)->Flush(); !s.ok()) {
    std::fprintf(stderr, "lvs-extract: %s\n", s.ToString().c_str());
    return 1;
  }
  progress.Finish();
  if (progress.done() == 0 && already == 0 && unusable > 0) {
    // No records at all is a failure, not a success with no output
    // (for example --image-size larger than every clip).
    std::fprintf(stderr,
                 "lvs-extract: no item was extracted: %lld skipped as "
                 "unusable (see the summary; check --image-size, "
                 "--target-fps and --max-frames against the items)\n",
                 static_cast<long long>(unusable));
    return 1;
  }
  return progress.failed() > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any BLAS call or thread: may re-execute the program.
  lvs::common::EnsureOpenBlasCore(argv);
  CLI::App app{"lvs-extract: VAE latents of videos and images"};
  std::string items, out;
  Models m;
  lvs::tools::ExtractOptions o;
  app.add_option("--items", items, "JSON or JSONL list with path, prompt")
      ->required();
  app.add_option("--out", out, "output directory (shards + records.jsonl)")
      ->required();
  app.add_option("--vae", m.vae_dir, "VAE directory (config.json + weights)")
      ->required();
  app.add_option("--text-encoder", m.text_encoder_dir,
                 "Gemma-2 directory: also cache each prompt's caption "
                 "features and system_prompt.safetensors");
  app.add_option("--system-prompt", m.captions.system_prompt,
                 "prepended to every prompt (default: the pipeline's)");
  app.add_option("--max-caption-tokens", m.captions.max_tokens,
                 "token cap per caption, BOS and system prompt included");
  app.add_option("--image-size", o.image_size,
                 "crop list size (multiple of 32)");
  app.add_option("--target-fps", o.target_fps, "sampling rate");
  app.add_option("--max-frames", o.max_frames, "cap on frames (0: none)");
  app.add_option("--chunk-frames", o.chunk_frames, "VAE encode chunk");
  app.add_option("--shard-max-bytes", o.shard_max_bytes, "shard size limit");
  app.add_option("--device", m.device, "cpu or cuda:N");
  app.add_option("--dtype", m.dtype, "float32 or bfloat16 (models)")
      ->check(CLI::IsMember({"float32", "bfloat16"}));
  LVS_CLI_PARSE(app, argc, argv);
  return Run(items, out, m, o);
}
