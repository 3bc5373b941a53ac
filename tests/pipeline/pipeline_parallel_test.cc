// The pipeline over several CPU ranks (Gloo) on the tiny golden models:
// --devices cpu,cpu (CFG 2) and cpu,cpu,cpu,cpu (CFG 2 x SP 2) give the
// sampler trajectory and decoded frames of one device within 1e-5 relative
// (fp32) with the VAE tiles spread over the ranks; the parallel tiled decode
// equals the single-device tiled decode; step caching fills the counts.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "model/pipeline/pipeline.h"

namespace lvs::pipeline {
namespace {

const std::string kGolden = LVS_GOLDEN_DIR;

PipelineOptions Options(std::vector<std::string> devices) {
  PipelineOptions o;
  o.dit_dir = kGolden + "/dit";
  o.text_encoder_dir = kGolden + "/text_encoder";
  o.vae_dir = kGolden + "/vae";
  o.devices = std::move(devices);
  o.precision = Precision::kFloat32;  // kDefault is bf16 on AMX-BF16 CPUs.
  // Tiles of 32 x 32 px: a 64 x 96 video decodes as 2 x 4 tiles.
  o.vae_tiling.enabled = true;
  o.vae_tiling.tile_sample_height = 32;
  o.vae_tiling.tile_sample_width = 32;
  return o;
}

GenerationRequest Request() {
  GenerationRequest r;
  r.prompt = "A red panda eats bamboo in a snowy forest.";
  r.width = 96;
  r.height = 64;
  r.frames = 8;
  r.fps = 8;
  r.sample_config = "f24F96R960-MultiScale";
  r.grid_points = 8;
  r.seed = 5;
  r.precision = Precision::kFloat32;
  return r;
}

double MaxRel(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
  return ((a64 - b64).abs().max() / b64.abs().max()).item<double>();
}

struct Outcome {
  GenerationResult result;
  GenerationTrace trace;
};

Outcome Generate(Pipeline& pipe, const GenerationRequest& r) {
  Outcome run;
  auto result = pipe.Generate(r, {}, {}, &run.trace);
  EXPECT_TRUE(result.ok()) << result.status();
  if (result.ok()) run.result = *result;
  return run;
}

TEST(PipelineParallelTest, DevicesMatchOneDevice) {
  auto one = Pipeline::Create(Options({}));
  ASSERT_TRUE(one.ok()) << one.status();
  const Outcome want = Generate(**one, Request());
  ASSERT_FALSE(want.trace.states.empty());
  for (int n : {2, 4}) {
    auto many = Pipeline::Create(Options(std::vector<std::string>(n, "cpu")));
    ASSERT_TRUE(many.ok()) << many.status();
    EXPECT_EQ((*many)->devices().size(), static_cast<size_t>(n));
    const Outcome got = Generate(**many, Request());
    ASSERT_EQ(got.trace.states.size(), want.trace.states.size());
    for (size_t i = 0; i < want.trace.states.size(); ++i) {
      EXPECT_LT(MaxRel(got.trace.states[i], want.trace.states[i]), 1e-5)
          << n << " devices, state " << i;
    }
    EXPECT_LT(MaxRel(got.trace.decoded, want.trace.decoded), 1e-5) << n;
    const torch::Tensor diff = (got.trace.frames.to(torch::kInt32) -
                                want.trace.frames.to(torch::kInt32))
                                   .abs();
    EXPECT_LE(diff.max().item<int>(), 1) << n;  // Rounding at a boundary.
    EXPECT_EQ(got.result.dit_forwards_computed,
              want.result.dit_forwards_computed);
  }
}

TEST(PipelineParallelTest, ParallelTiledDecodeEqualsTiledDecode) {
  vae::VaeOptions options;
  options.tiling.enabled = true;
  options.tiling.tile_sample_height = 32;
  options.tiling.tile_sample_width = 32;
  auto vae = vae::CogVideoXVae::Create(kGolden + "/vae", options);
  ASSERT_TRUE(vae.ok()) << vae.status();
  torch::manual_seed(2);
  const torch::Tensor z = torch::randn({1, 16, 3, 8, 12});
  auto want = (*vae)->Decode(z);
  ASSERT_TRUE(want.ok()) << want.status();
  for (int helpers : {1, 3}) {
    std::vector<const vae::CogVideoXVae*> others(helpers, vae->get());
    int chunks = 0;
    auto got = (*vae)->DecodeParallel(z, others, [&](const torch::Tensor&) {
      ++chunks;
      return absl::OkStatus();
    });
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(torch::equal(*got, *want)) << helpers << " helpers";
    EXPECT_GT(chunks, 0);
  }
}

TEST(PipelineParallelTest, StepCacheCountsForwards) {
  auto pipe = Pipeline::Create(Options({}));
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  GenerationRequest r = Request();
  r.grid_points = 16;
  const Outcome plain = Generate(**pipe, r);
  EXPECT_EQ(plain.result.dit_forwards_cached, 0);
  r.cache_threshold = 1.0;
  const Outcome cached = Generate(**pipe, r);
  EXPECT_GT(cached.result.dit_forwards_cached, 0);
  EXPECT_EQ(
      cached.result.dit_forwards_computed + cached.result.dit_forwards_cached,
      plain.result.dit_forwards_computed);
  r.cache_threshold = 1.5;
  EXPECT_EQ((*pipe)->Generate(r, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lvs::pipeline
