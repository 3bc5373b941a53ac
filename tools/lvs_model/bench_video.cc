// A whole video at the real shapes with random weights: 2B DiT
// (MultiScaleNextDiT_2B_GQA), Gemma-2-2B text encoder, CogVideoX-2b VAE
// (tiled decode), by default 1248x704x96 with f24F96R960-MultiScale in
// bf16. Runs the request once per case of --cases ("base": one device, no
// step caching; "cache": one device at --cache-threshold; "all": every
// device of --devices) and prints one table (seconds per stage and per
// DiT patch phase, DiT MFU = analytic FLOP / DiT time / --peak-tflops,
// peak device memory) and writes it as JSON to --json. scripts/gpu-bench
// builds and runs it on a CUDA machine; it also runs (slowly) on the CPU.
#include "tools/lvs_model/bench_video.h"

#include <torch/cuda.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "model/dit/config_2b.h"
#include "model/pipeline/pipeline.h"
#include "nlohmann/json.hpp"

namespace lvs::pipeline {
namespace {

struct Flags {
  std::string devices = "cuda:0";
  std::string cases = "base,cache,all";
  int width = 1248, height = 704, frames = 96, steps = 0;
  std::string sample_config = "f24F96R960-MultiScale";
  std::string precision = "bf16";
  double cache_threshold = 0.05;
  double peak_tflops = 989;  // H100/H200 SXM dense bf16.
  int dit_layers = -1;
  std::string tokenizer = "tests/golden/text_encoder/tokenizer.model";
  std::string json = "gpu-bench.json";
};

text_encoder::Gemma2Config Gemma2B(int64_t vocab) {
  text_encoder::Gemma2Config g;
  g.vocab_size = vocab;
  g.hidden_size = 2304;
  g.intermediate_size = 9216;
  g.num_hidden_layers = 26;
  g.num_attention_heads = 8;
  g.num_key_value_heads = 4;
  g.head_dim = 256;
  g.query_pre_attn_scalar = 256;
  g.attn_logit_softcapping = 50.0;
  g.sliding_window = 4096;
  return g;
}

vae::VaeConfig CogVideoX2b() {
  vae::VaeConfig v;
  v.block_out_channels = {128, 256, 256, 512};
  v.layers_per_block = 3;
  v.norm_num_groups = 32;
  return v;
}

// Analytic FLOP of one DiT forward over `tokens` tokens of one item with
// `caption` caption tokens (matmuls only; 2 FLOP per multiply-add).
double ForwardFlop(const dit::DiTConfig& c, double tokens, double caption) {
  const double d = c.dim, kv = c.n_kv_heads * (c.dim / c.n_heads);
  const double ffn = c.ffn_hidden_dim();
  const double per_layer =
      tokens * (2 * d * d * 2 + 2 * d * kv * 2 + 2 * d * ffn * 3) +
      caption * 2 * c.cap_feat_dim * kv * 2 + 4 * tokens * tokens * d +
      4 * tokens * caption * d;
  return c.n_layers * per_layer;
}

absl::StatusOr<std::unique_ptr<Pipeline>> Build(const Flags& f,
                                                std::vector<std::string> devs) {
  const torch::Device device(devs[0]);
  const torch::ScalarType dtype =
      f.precision == "bf16" ? torch::kBFloat16 : torch::kFloat32;
  torch::manual_seed(0);
  Pipeline::Models m;
  LVS_ASSIGN_OR_RETURN(m.tokenizer,
                       text_encoder::Tokenizer::Create(f.tokenizer));
  const text_encoder::Gemma2Config g = Gemma2B(256000);
  text_encoder::Gemma2Model gm(g, g.num_hidden_layers - 1, false);
  gm->to(device, dtype);
  gm->eval();
  m.encoder = std::make_unique<text_encoder::Gemma2Encoder>(
      g, gm, text_encoder::TextEncoderOptions{dtype, device, false});
  m.dit = dit::MultiScaleNextDiT(dit::Config2B(f.dit_layers));
  m.dit->to(device, dtype);
  for (auto& p : m.dit->parameters()) p.requires_grad_(false);
  m.dit->eval();
  vae::VaeOptions vo;
  vo.dtype = dtype;
  vo.device = device;
  vo.tiling.enabled = true;
  LVS_ASSIGN_OR_RETURN(m.vae,
                       vae::CogVideoXVae::CreateRandom(CogVideoX2b(), vo));
  PipelineOptions o;
  o.device = devs[0];
  o.devices = devs.size() > 1 ? devs : std::vector<std::string>{};
  o.precision = ParsePrecision(f.precision).value();
  o.vae_tiling = vo.tiling;
  return Pipeline::FromModels(o, std::move(m));
}

nlohmann::json RunCase(const Flags& f, const std::string& name,
                       std::vector<std::string> devs, double threshold) {
  nlohmann::json out = {{"case", name}, {"devices", devs}};
  auto pipe = Build(f, devs);
  if (!pipe.ok()) {
    out["error"] = pipe.status().ToString();
    return out;
  }
  GenerationRequest r;
  r.prompt = "A red panda eats bamboo in a snowy forest.";
  r.width = f.width;
  r.height = f.height;
  r.frames = f.frames;
  r.sample_config = f.sample_config;
  r.grid_points = f.steps;
  r.seed = 1;
  r.precision = ParsePrecision(f.precision).value();
  r.cache_threshold = threshold;
  const bool cuda = torch::Device(devs[0]).is_cuda();
  std::map<std::string, double> phase_s, phase_flop;
  double last = 0;
  const dit::DiTConfig c = dit::Config2B(f.dit_layers);
  PipelineCallbacks cb;
  cb.on_step = [&](const sampler::StepInfo& s) {
    if (cuda) torch::cuda::synchronize();
    const std::string key = s.patch.ToString();
    phase_s[key] += s.elapsed_s - last;
    last = s.elapsed_s;
    // Tokens of one item at this patch: F/pF * H/P * W/P latents.
    const double tokens = (f.frames / 4.0 / s.patch.f_patch) *
                          (f.height / 8.0 / s.patch.patch) *
                          (f.width / 8.0 / s.patch.patch);
    phase_flop[key] += ForwardFlop(c, tokens, 64) * (s.guided ? 2 : 1);
  };
  auto result = (*pipe)->Generate(r, cb);
  if (!result.ok()) {
    out["error"] = result.status().ToString();
    return out;
  }
  double dit_s = 0, flop = 0;
  for (const auto& [k, s] : phase_s) dit_s += s;
  for (const auto& [k, v] : phase_flop) flop += v;
  out["seconds_total"] = result->seconds;
  for (const StageReport& s : result->stages) {
    out["stages"][s.name] = {
        {"seconds", s.seconds},
        {"peak_device_GiB", s.cuda_peak_bytes / 1073741824.0},
        {"peak_rss_GiB", s.peak_rss_bytes / 1073741824.0}};
  }
  out["dit_phases_seconds"] = phase_s;
  out["dit_forwards_computed"] = result->dit_forwards_computed;
  out["dit_forwards_cached"] = result->dit_forwards_cached;
  out["dit_flop_uncached"] = flop;
  // MFU over the forwards that ran: cached forwards did ~1/n_layers.
  const double ran =
      result->dit_forwards_computed + result->dit_forwards_cached;
  const double share = ran > 0 ? result->dit_forwards_computed / ran : 1;
  out["dit_mfu"] = dit_s > 0 ? flop * share / dit_s / (f.peak_tflops * 1e12) /
                                   static_cast<double>(devs.size())
                             : 0;
  out["peak_tflops_per_device"] = f.peak_tflops;
  return out;
}

void PrintTable(const nlohmann::json& runs) {
  std::printf("%-6s %-24s %8s %8s %8s %8s %8s %7s %6s %9s\n", "case", "devices",
              "text_s", "sample_s", "decode_s", "total_s", "fwd c/k", "MFU", "",
              "peak_GiB");
  for (const nlohmann::json& r : runs) {
    if (r.contains("error")) {
      std::printf("%-6s error: %s\n", r["case"].get<std::string>().c_str(),
                  r["error"].get<std::string>().c_str());
      continue;
    }
    double peak = 0;
    for (const auto& [k, s] : r["stages"].items()) {
      peak = std::max(peak, s["peak_device_GiB"].get<double>());
    }
    auto stage = [&](const char* n) {
      return r["stages"].contains(n) ? r["stages"][n]["seconds"].get<double>()
                                     : 0.0;
    };
    std::string devs;
    for (const auto& d : r["devices"])
      devs += (devs.empty() ? "" : ",") + d.get<std::string>();
    std::printf(
        "%-6s %-24s %8.1f %8.1f %8.1f %8.1f %4lld/%-3lld %6.1f%% %6s %9.1f\n",
        r["case"].get<std::string>().c_str(), devs.c_str(), stage("text"),
        stage("sample"), stage("decode"), r["seconds_total"].get<double>(),
        r["dit_forwards_computed"].get<long long>(),
        r["dit_forwards_cached"].get<long long>(),
        100 * r["dit_mfu"].get<double>(), "", peak);
    for (const auto& [k, s] : r["dit_phases_seconds"].items()) {
      std::printf("         DiT phase %-5s %8.1f s\n", k.c_str(),
                  s.get<double>());
    }
  }
}

}  // namespace

void AddBenchVideoCommand(CLI::App& app) {
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "bench-video",
      "Time one whole video at the real shapes with random weights");
  cmd->add_option("--devices", f->devices,
                  "comma-separated, e.g. cuda:0,cuda:1");
  cmd->add_option("--cases", f->cases, "base,cache,all");
  cmd->add_option("--width", f->width, "pixels");
  cmd->add_option("--height", f->height, "pixels");
  cmd->add_option("--frames", f->frames, "requested frames");
  cmd->add_option("--steps", f->steps, "grid points (0: the config's)");
  cmd->add_option("--sample-config", f->sample_config, "sample config name");
  cmd->add_option("--precision", f->precision, "bf16 or fp32");
  cmd->add_option("--cache-threshold", f->cache_threshold,
                  "threshold of the cache case");
  cmd->add_option("--peak-tflops", f->peak_tflops,
                  "per-device dense peak used for the MFU");
  cmd->add_option("--dit-layers", f->dit_layers,
                  "DiT layers (negative: the 2B model's 24)");
  cmd->add_option("--tokenizer", f->tokenizer, "a Gemma tokenizer.model");
  cmd->add_option("--json", f->json, "JSON output path");
  cmd->callback([f] {
    const std::vector<std::string> devs =
        absl::StrSplit(f->devices, ',', absl::SkipEmpty());
    if (devs.empty()) throw CLI::RuntimeError(2);
    std::printf("peak used for MFU: %.0f TFLOP/s per device (dense)\n",
                f->peak_tflops);
    nlohmann::json runs = nlohmann::json::array();
    for (absl::string_view c :
         absl::StrSplit(f->cases, ',', absl::SkipEmpty())) {
      if (c == "base") runs.push_back(RunCase(*f, "base", {devs[0]}, 0));
      if (c == "cache") {
        runs.push_back(RunCase(*f, "cache", {devs[0]}, f->cache_threshold));
      }
      if (c == "all" && devs.size() > 1)
        runs.push_back(RunCase(*f, "all", devs, 0));
      std::ofstream(f->json) << runs.dump(2) << "\n";
      std::fflush(stdout);
    }
    PrintTable(runs);
    std::printf("wrote %s\n", f->json.c_str());
    for (const nlohmann::json& r : runs) {
      if (r.contains("error")) throw CLI::RuntimeError(1);
    }
  });
}

}  // namespace lvs::pipeline
