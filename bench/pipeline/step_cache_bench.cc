// Step caching quality and speed on the tiny golden models (fp32, CPU):
// for cache thresholds 0, 0.05, 0.1, 0.2, 0.3 one request (128x128, 16
// frames, f24F96R960-MultiScale with its own step count, three seeds) and
// per threshold the DiT forwards computed and cached, the sampling time
// relative to threshold 0 (median over the seeds) and the PSNR of the
// frames against threshold 0 with the same seed (mean over the seeds).
// Prints one table. Run it with OPENBLAS_CORETYPE=SkylakeX on this machine.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "model/pipeline/pipeline.h"

namespace lvs::pipeline {
namespace {

const std::string kGolden = LVS_GOLDEN_DIR;

double Psnr(const torch::Tensor& a, const torch::Tensor& b) {
  const double mse = (a.to(torch::kFloat64) - b.to(torch::kFloat64))
                         .pow(2)
                         .mean()
                         .item<double>();
  return mse == 0 ? INFINITY : 10 * std::log10(255.0 * 255.0 / mse);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Main() {
  PipelineOptions o;
  o.dit_dir = kGolden + "/dit";
  o.text_encoder_dir = kGolden + "/text_encoder";
  o.vae_dir = kGolden + "/vae";
  auto pipe = Pipeline::Create(o);
  if (!pipe.ok()) {
    std::fprintf(stderr, "%s\n", pipe.status().ToString().c_str());
    return 1;
  }
  const std::vector<double> thresholds = {0, 0.05, 0.1, 0.2, 0.3};
  const std::vector<uint64_t> seeds = {1, 2, 3};
  std::vector<torch::Tensor> reference(seeds.size());
  std::vector<double> reference_s(seeds.size());
  std::printf("%-9s %9s %7s %11s %9s\n", "threshold", "computed", "cached",
              "time_ratio", "PSNR_dB");
  for (double threshold : thresholds) {
    int64_t computed = 0, cached = 0;
    std::vector<double> ratios;
    double psnr = 0;
    for (size_t i = 0; i < seeds.size(); ++i) {
      GenerationRequest r;
      r.prompt = "A red panda eats bamboo in a snowy forest.";
      r.width = 128;
      r.height = 128;
      r.frames = 16;
      r.fps = 8;
      r.seed = seeds[i];
      r.cache_threshold = threshold;
      GenerationTrace trace;
      auto result = (*pipe)->Generate(r, {}, {}, &trace);
      if (!result.ok()) {
        std::fprintf(stderr, "%s\n", result.status().ToString().c_str());
        return 1;
      }
      double sample_s = 0;
      for (const StageReport& s : result->stages) {
        if (s.name == "sample") sample_s = s.seconds;
      }
      if (threshold == 0) {
        reference[i] = trace.frames;
        reference_s[i] = sample_s;
      }
      computed += result->dit_forwards_computed;
      cached += result->dit_forwards_cached;
      ratios.push_back(sample_s / reference_s[i]);
      psnr += Psnr(trace.frames, reference[i]) / seeds.size();
    }
    std::printf("%-9.2f %9.1f %7.1f %11.3f %9.2f\n", threshold,
                computed / static_cast<double>(seeds.size()),
                cached / static_cast<double>(seeds.size()), Median(ratios),
                psnr);
  }
  return 0;
}

}  // namespace
}  // namespace lvs::pipeline

int main() { return lvs::pipeline::Main(); }
