// CogVideoXVae behaviour: golden decode with streamed chunks, frame-count
// rules, encode down-sampling counts, chunked encode, strict loading and
// input validation.
#include "model/vae/vae.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "model/io/torch_tensors.h"

namespace lvs::vae {
namespace {

const std::string kGoldenVae = std::string(LVS_GOLDEN_DIR) + "/vae";

VaeConfig TinyConfig() {
  VaeConfig c;
  c.block_out_channels = {8, 8, 8, 8};
  c.layers_per_block = 1;
  c.norm_num_groups = 4;
  return c;
}

std::unique_ptr<CogVideoXVae> TinyRandomVae() {
  torch::manual_seed(11);
  auto vae = CogVideoXVae::CreateRandom(TinyConfig(), VaeOptions{});
  EXPECT_TRUE(vae.ok()) << vae.status();
  return std::move(vae).value();
}

std::unique_ptr<CogVideoXVae> GoldenVae() {
  auto vae = CogVideoXVae::Create(kGoldenVae, VaeOptions{});
  EXPECT_TRUE(vae.ok()) << vae.status();
  return std::move(vae).value();
}

double MaxRel(const torch::Tensor& got, const torch::Tensor& ref) {
  return ((got.to(torch::kFloat64) - ref.to(torch::kFloat64)).abs().max() /
          ref.abs().max().to(torch::kFloat64))
      .item<double>();
}

TEST(VaeDecodeTest, GoldenDecodeStreamsChunksInOrder) {
  auto vae = GoldenVae();
  auto golden = io::LoadSafetensors(std::string(LVS_GOLDEN_DIR) +
                                    "/vectors/vae.safetensors");
  ASSERT_TRUE(golden.ok()) << golden.status();
  std::vector<torch::Tensor> chunks;
  auto out = vae->Decode(golden->at("decode1.z"), [&](const torch::Tensor& f) {
    chunks.push_back(f.clone());
    return absl::OkStatus();
  });
  ASSERT_TRUE(out.ok()) << out.status();
  const torch::Tensor& ref = golden->at("decode1.sample");
  ASSERT_EQ(out->sizes(), ref.sizes());
  EXPECT_LT(MaxRel(*out, ref), 1e-4);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].size(2), 8);
  EXPECT_EQ(chunks[1].size(2), 8);
  EXPECT_TRUE(torch::equal(torch::cat(chunks, 2), *out));
}

TEST(VaeDecodeTest, ChunkCallbackErrorStopsTheDecode) {
  auto vae = TinyRandomVae();
  int calls = 0;
  auto out = vae->Decode(torch::randn({1, 16, 6, 1, 2}),
                         [&](const torch::Tensor&) -> absl::Status {
                           ++calls;
                           return absl::CancelledError("stop here");
                         });
  EXPECT_EQ(out.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(out.status().message(), "stop here");
  EXPECT_EQ(calls, 1);  // Of three chunks.
}

TEST(VaeDecodeTest, FrameCountsForTwoToThirteenLatents) {
  auto vae = TinyRandomVae();
  for (int64_t n = 2; n <= 13; ++n) {
    const int64_t expected = n % 2 == 0 ? 4 * n : 4 * n - 3;
    auto count = DecodedFrameCount(vae->config(), n);
    ASSERT_TRUE(count.ok());
    EXPECT_EQ(*count, expected) << n;
    std::vector<int64_t> chunk_frames;
    auto out = vae->Decode(torch::randn({1, 16, n, 1, 2}),
                           [&](const torch::Tensor& f) {
                             chunk_frames.push_back(f.size(2));
                             return absl::OkStatus();
                           });
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->sizes(), (std::vector<int64_t>{1, 3, expected, 8, 16})) << n;
    ASSERT_EQ(static_cast<int64_t>(chunk_frames.size()), n / 2);
    EXPECT_EQ(chunk_frames[0], n % 2 == 0 ? 8 : 9);
    for (size_t k = 1; k < chunk_frames.size(); ++k)
      EXPECT_EQ(chunk_frames[k], 8);
  }
}

TEST(VaeDecodeTest, RejectsBadLatents) {
  auto vae = TinyRandomVae();
  auto one = vae->Decode(torch::randn({1, 16, 1, 2, 2}));
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(one.status().message().find("at least 2 latent frames"),
            std::string::npos)
      << one.status();

  auto channels = vae->Decode(torch::randn({1, 8, 2, 2, 2}));
  ASSERT_FALSE(channels.ok());
  EXPECT_NE(channels.status().message().find("8 channels"), std::string::npos)
      << channels.status();

  torch::Tensor nan = torch::randn({1, 16, 2, 2, 2});
  nan[0][3][1][0][1] = std::numeric_limits<float>::quiet_NaN();
  nan[0][4][0][0][0] = std::numeric_limits<float>::infinity();
  auto bad = vae->Decode(nan);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("2 non-finite"), std::string::npos)
      << bad.status();

  EXPECT_FALSE(vae->Decode(torch::randn({16, 2, 2, 2})).ok());
  EXPECT_FALSE(vae->Decode(torch::Tensor()).ok());
  EXPECT_FALSE(vae->Decode(torch::ones({1, 16, 2, 2, 2}, torch::kInt64)).ok());
}

TEST(VaeEncodeTest, TemporalDownsamplingCounts) {
  auto vae = TinyRandomVae();
  struct Case {
    int64_t frames, after_first, latents;
  };
  for (const Case& c :
       {Case{9, 5, 3}, Case{13, 7, 4}, Case{8, 4, 2}, Case{1, 1, 1}}) {
    EXPECT_EQ(DownsampledFrames(c.frames, true), c.after_first);
    EXPECT_EQ(DownsampledFrames(c.after_first, true), c.latents);
    EXPECT_EQ(EncodedFrames(vae->config(), c.frames), c.latents);
    auto dist = vae->Encode(torch::rand({1, 3, c.frames, 8, 16}) * 2 - 1);
    ASSERT_TRUE(dist.ok()) << dist.status();
    EXPECT_EQ(dist->mean.sizes(),
              (std::vector<int64_t>{1, 16, c.latents, 1, 2}))
        << c.frames;
  }
}

TEST(VaeEncodeTest, ChunkedEncodeCarriesCacheAcrossChunks) {
  auto vae = TinyRandomVae();
  torch::Tensor video = torch::rand({1, 3, 97, 8, 8}) * 2 - 1;
  auto chunked = vae->EncodeChunked(video, 32);
  ASSERT_TRUE(chunked.ok()) << chunked.status();
  // 32 + 32 + 32 + 1 frames -> 8 + 8 + 8 + 1 latents.
  EXPECT_EQ(chunked->mean.size(2), 25);
  // The first chunk starts from empty caches: it equals encoding it alone.
  auto first = vae->Encode(video.narrow(2, 0, 32));
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(
      torch::allclose(chunked->mean.narrow(2, 0, 8), first->mean, 1e-5, 1e-6));
  // The second chunk sees the first through the caches.
  auto second_alone = vae->Encode(video.narrow(2, 32, 32));
  ASSERT_TRUE(second_alone.ok());
  EXPECT_GT((chunked->mean.narrow(2, 8, 8) - second_alone->mean)
                .abs()
                .max()
                .item<float>(),
            1e-4);
}

TEST(VaeEncodeTest, GoldenEncodeMatchesAndOneChunkEqualsOnePass) {
  auto vae = GoldenVae();
  auto golden = io::LoadSafetensors(std::string(LVS_GOLDEN_DIR) +
                                    "/vectors/vae.safetensors");
  ASSERT_TRUE(golden.ok());
  const torch::Tensor& video = golden->at("encode0.video");
  auto dist = vae->Encode(video);
  ASSERT_TRUE(dist.ok()) << dist.status();
  EXPECT_LT(MaxRel(dist->Mode(), golden->at("encode0.mean")), 1e-4);
  EXPECT_LT(MaxRel(dist->logvar, golden->at("encode0.logvar")), 1e-4);
  EXPECT_LT(MaxRel(dist->std, golden->at("encode0.std")), 1e-4);
  auto same = vae->EncodeChunked(video, video.size(2));
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(torch::equal(same->mean, dist->mean));
}

TEST(VaeEncodeTest, RejectsBadVideo) {
  auto vae = TinyRandomVae();
  EXPECT_FALSE(vae->Encode(torch::rand({1, 4, 9, 8, 8})).ok());
  EXPECT_FALSE(vae->Encode(torch::rand({1, 3, 9, 12, 8})).ok());
  EXPECT_FALSE(vae->EncodeChunked(torch::rand({1, 3, 9, 8, 8}), 0).ok());
  torch::Tensor nan = torch::rand({1, 3, 9, 8, 8});
  nan[0][0][0][0][0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(vae->Encode(nan).ok());
}

class VaeLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lvs_vae_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::filesystem::copy_file(kGoldenVae + "/config.json",
                               dir_ + "/config.json");
    auto tensors = io::LoadSafetensors(kGoldenVae +
                                       "/diffusion_pytorch_model.safetensors");
    ASSERT_TRUE(tensors.ok());
    tensors_ = *tensors;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  absl::Status LoadWith(const io::TensorMap& tensors) {
    EXPECT_TRUE(io::SaveSafetensors(
                    dir_ + "/diffusion_pytorch_model.safetensors", tensors)
                    .ok());
    return CogVideoXVae::Create(dir_, VaeOptions{}).status();
  }

  std::string dir_;
  io::TensorMap tensors_;
};

TEST_F(VaeLoadTest, GoldenLoadsInBothDtypes) {
  EXPECT_EQ(tensors_.size(), 240u);
  EXPECT_TRUE(LoadWith(tensors_).ok());
  VaeOptions bf16;
  bf16.dtype = torch::kBFloat16;
  auto vae = CogVideoXVae::Create(dir_, bf16);
  ASSERT_TRUE(vae.ok()) << vae.status();
  const torch::Tensor w = (*vae)->model()->decoder->conv_in->conv->weight;
  EXPECT_EQ(w.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(
      w, tensors_.at("decoder.conv_in.conv.weight").to(torch::kBFloat16)));
}

TEST_F(VaeLoadTest, StrictLoadNamesEveryProblem) {
  io::TensorMap t = tensors_;
  t.erase("decoder.up_blocks.3.resnets.0.conv_shortcut.weight");
  t["decoder.extra.weight"] = torch::zeros({2});
  t["encoder.conv_in.conv.bias"] = torch::zeros({17}, torch::kFloat16);
  absl::Status s = LoadWith(t);
  ASSERT_FALSE(s.ok());
  const std::string msg(s.message());
  for (const char* needle :
       {"diffusion_pytorch_model.safetensors",
        "decoder.up_blocks.3.resnets.0.conv_shortcut.weight",
        "decoder.extra.weight", "encoder.conv_in.conv.bias"}) {
    EXPECT_NE(msg.find(needle), std::string::npos) << needle << " in " << msg;
  }
}

TEST_F(VaeLoadTest, ConfigErrorsNameTheFile) {
  std::filesystem::remove(dir_ + "/config.json");
  absl::Status missing = LoadWith(tensors_);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("config.json"), std::string::npos);
  VaeOptions f16;
  f16.dtype = torch::kFloat16;
  EXPECT_FALSE(CogVideoXVae::Create(kGoldenVae, f16).ok());
}

}  // namespace
}  // namespace lvs::vae
