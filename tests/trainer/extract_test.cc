// lvs-extract: crop list and frame sampling as the reference; end to end on
// synthetic clips and a PNG with the tiny golden VAE: latents equal the
// chunked encode of the sampled, cropped frames (bf16, scaled), shards stay
// under the size limit, rejects carry reasons, reruns resume, and the
// trainer's dataset reads the output.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "model/io/torch_tensors.h"
#include "tests/trainer/synthetic_clips.h"
#include "tools/lvs_extract/extract.h"
#include "tools/lvs_extract/item_list.h"
#include "trainer/latent_dataset.h"

namespace lvs::tools {
namespace {

TEST(CropSizeListTest, MatchesTheReference) {
  const std::vector<std::pair<int, int>> want = {
      {128, 32}, {96, 32}, {64, 32}, {64, 64}, {32, 64}, {32, 96}, {32, 128}};
  EXPECT_EQ(CropSizeList(4, 32), want);
  EXPECT_EQ(ChooseCrop(want, 96, 64), std::make_pair(64, 32));
  EXPECT_EQ(ChooseCrop(want, 64, 64), std::make_pair(64, 64));
  EXPECT_EQ(ChooseCrop(want, 50, 150), std::make_pair(32, 96));
  // 1024 patches (image_size 1024): every entry within aspect ratio 4.
  for (const auto& [w, h] : CropSizeList(1024, 32)) {
    EXPECT_LE(std::max(w, h), 4 * std::min(w, h));
    EXPECT_LE((w / 32) * (h / 32), 1024);
  }
}

TEST(SampleFrameIndicesTest, RoundsToOnePlusFourK) {
  ExtractOptions o;
  o.target_fps = 8;
  std::vector<int64_t> idx = SampleFrameIndices(3.0, 24, o);  // 24 -> 21.
  ASSERT_EQ(idx.size(), 21u);
  for (size_t i = 0; i < idx.size(); ++i) EXPECT_EQ(idx[i], 3 * int64_t(i));
  EXPECT_EQ(SampleFrameIndices(12.1, 30, o).size(), 97u);  // int(97.0) = 97.
  o.max_frames = 50;
  EXPECT_EQ(SampleFrameIndices(12.1, 30, o).size(), 49u);
  EXPECT_EQ(SampleFrameIndices(2.0, 25, o)[3], 9);  // round(3/8*25 = 9.375).
}

// Every clip skipped (here: smaller than --image-size) used to exit 0 with
// no records.jsonl; it is a failure that says why.
TEST(LvsExtractTest, FailsWhenEveryItemIsSkipped) {
  const std::string dir = absl::StrCat(
      LVS_BINARY_DIR, "/tests/trainer/tmp/extract-none-", ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(
      trainer::testing::WriteShapesClip(dir + "/small.mp4", 48, 32, 18, 8, 1.5)
          .ok());
  {
    std::ofstream items(dir + "/items.json");
    items << R"([{"path": "small.mp4", "prompt": "small"}])";
  }
  const std::string cmd = absl::StrCat(
      LVS_BINARY_DIR, "/tools/lvs_extract/lvs-extract --items=", dir,
      "/items.json --out=", dir, "/out --vae=", LVS_GOLDEN_DIR,
      "/vae --image-size=64 --target-fps=8 2>", dir, "/log.txt");
  EXPECT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 1);
  std::ifstream log(dir + "/log.txt");
  const std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(text.find("no item was extracted"), std::string::npos) << text;
  std::filesystem::remove_all(dir);
}

TEST(LvsExtractTest, ExtractsShardsAndRecordsAndResumes) {
  const std::string dir =
      absl::StrCat(LVS_BINARY_DIR, "/tests/trainer/tmp/extract-", ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  using trainer::testing::WriteShapesClip;
  ASSERT_TRUE(WriteShapesClip(dir + "/good.mp4", 96, 64, 18, 8, 1.5).ok());
  ASSERT_TRUE(WriteShapesClip(dir + "/short.mp4", 96, 64, 8, 8, 1.5).ok());
  ASSERT_TRUE(WriteShapesClip(dir + "/slow.mp4", 96, 64, 18, 3, 1.5).ok());
  ASSERT_TRUE(WriteShapesClip(dir + "/small.mp4", 48, 32, 18, 8, 1.5).ok());
  trainer::testing::WritePng(dir + "/still.png",
                             trainer::testing::ShapesFrame(64, 80, 0, 0));
  {
    std::ofstream items(dir + "/items.json");
    items << R"([{"path": "good.mp4", "prompt": "moving shapes", "id": "a"},
                 {"path": "short.mp4", "prompt": "short"},
                 {"path": "slow.mp4", "prompt": "slow"},
                 {"path": "small.mp4", "prompt": "small"},
                 {"path": "still.png", "prompt": "an image"}])";
  }
  const std::string cmd = absl::StrCat(
      LVS_BINARY_DIR, "/tools/lvs_extract/lvs-extract --items=", dir,
      "/items.json --out=", dir, "/out --vae=", LVS_GOLDEN_DIR,
      "/vae --image-size=64 --target-fps=8 --chunk-frames=8 "
      "--shard-max-bytes=4000 2>",
      dir, "/log.txt");
  ASSERT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 0);
  auto read_log = [&] {
    std::ifstream log(dir + "/log.txt");
    return std::string((std::istreambuf_iterator<char>(log)), {});
  };
  std::string log = read_log();
  EXPECT_NE(log.find("summary: 2 done, 3 skipped, 0 failed of 5"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("too short"), std::string::npos) << log;
  EXPECT_NE(log.find("below target/2"), std::string::npos) << log;
  EXPECT_NE(log.find("too small"), std::string::npos) << log;

  auto records = ReadItems(dir + "/out/records.jsonl").value();
  ASSERT_EQ(records.size(), 2u);
  const nlohmann::json& video = records[0];
  EXPECT_EQ(video["id"], "a");  // Original fields kept.
  // The clip's path is absolute: the records file is elsewhere than the
  // item list (lvs-motion resolves relative paths against it).
  EXPECT_EQ(video["path"], dir + "/good.mp4");
  EXPECT_EQ(video["ori_id"], 0);
  EXPECT_EQ(video["width"], 64);
  EXPECT_EQ(video["height"], 32);
  EXPECT_DOUBLE_EQ(video["seconds"].get<double>(), 18.0 / 8);
  EXPECT_EQ(video["shape"], nlohmann::json({16, 5, 4, 8}));  // 8+8+1 frames.
  EXPECT_EQ(records[1]["shape"], nlohmann::json({16, 1, 8, 8}));  // 64x64.
  EXPECT_NE(video["shard"], records[1]["shard"]);  // 5120 B > 4000 B limit.

  // The stored latent is bf16(mode * 1.15258426) of the chunked encode.
  io::TensorMap shard =
      io::LoadSafetensors(dir + "/out/" + video["shard"].get<std::string>())
          .value();
  const torch::Tensor stored = shard.at(video["key"].get<std::string>());
  EXPECT_EQ(stored.scalar_type(), torch::kBFloat16);
  auto vae = vae::CogVideoXVae::Create(LVS_GOLDEN_DIR "/vae", {}).value();
  auto dec = media::VideoDecoder::OpenFile(dir + "/good.mp4").value();
  std::vector<media::RgbFrame> all = dec->DecodeAll().value(), sampled;
  for (int64_t i : SampleFrameIndices(18.0 / 8, 8, ExtractOptions{64, 8}))
    sampled.push_back(all[i]);
  torch::NoGradGuard no_grad;
  const torch::Tensor want =
      (vae->EncodeChunked(PreprocessFrames(sampled, {64, 32}), 8)
           .value()
           .Mode()[0] *
       1.15258426)
          .to(torch::kBFloat16);
  EXPECT_TRUE(torch::equal(stored, want));

  // The trainer reads what was written.
  trainer::LatentDatasetOptions no_captions;
  no_captions.need_captions = false;
  auto ds = trainer::LatentDataset::Open({dir + "/out/records.jsonl"},
                                         no_captions, "records")
                .value();
  ASSERT_EQ(ds->size(), 2u);
  EXPECT_EQ(ds->Latent(1).value().sizes(), torch::IntArrayRef({16, 1, 8, 8}));

  // A rerun skips what is recorded; the rejects are reported again.
  ASSERT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 0);
  log = read_log();
  EXPECT_NE(log.find("summary: 0 done, 5 skipped, 0 failed of 5"),
            std::string::npos)
      << log;
  EXPECT_EQ(ReadItems(dir + "/out/records.jsonl").value().size(), 2u);
}

}  // namespace
}  // namespace lvs::tools
