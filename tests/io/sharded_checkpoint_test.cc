// Sharded safetensors: the golden text encoder loads; every broken index
// is rejected with an error naming the index and the rule.
#include "model/io/sharded_checkpoint.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/io/checkpoint.h"
#include "model/io/torch_tensors.h"
#include "tests/io/test_util.h"

namespace lvs::io {
namespace {

using testing::GoldenDir;
using ::testing::HasSubstr;
using testing::MakeTempDir;
using testing::WriteFile;

std::string TextEncoderDir() { return GoldenDir() + "/text_encoder"; }

TEST(ShardedCheckpoint, GoldenTextEncoderLoadsEveryKeyOnce) {
  absl::StatusOr<ShardIndex> index =
      ParseShardIndex(TextEncoderDir() + "/model.safetensors.index.json");
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->shards.size(), 2u);
  absl::StatusOr<TensorMap> tensors = LoadShardedSafetensors(TextEncoderDir());
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  EXPECT_EQ(tensors->size(), index->weight_map.size());
  // 3 layers x 11 tensors + embedding + final norm (README 3.2).
  EXPECT_EQ(tensors->size(), 3u * 11u + 2u);
  const torch::Tensor& emb = tensors->at("model.embed_tokens.weight");
  EXPECT_EQ(emb.sizes(), (std::vector<int64_t>{512, 48}));
  EXPECT_EQ(emb.scalar_type(), torch::kFloat32);
  // Each value equals the one in the shard the index names.
  TensorMap shard = *LoadSafetensors(TextEncoderDir() + "/" +
                                     index->weight_map.at("model.norm.weight"));
  EXPECT_TRUE(torch::equal(shard.at("model.norm.weight"),
                           tensors->at("model.norm.weight")));
  // LoadCheckpoint accepts the directory and the index path.
  absl::StatusOr<TensorMap> via_dir = LoadCheckpoint(TextEncoderDir());
  ASSERT_TRUE(via_dir.ok()) << via_dir.status();
  EXPECT_EQ(via_dir->size(), tensors->size());
  absl::StatusOr<TensorMap> via_json =
      LoadCheckpoint(TextEncoderDir() + "/model.safetensors.index.json");
  ASSERT_TRUE(via_json.ok()) << via_json.status();
}

// Writes shards a.safetensors {x}, b.safetensors {y}, c.safetensors {y, z}.
std::string MakeShards() {
  std::string dir = MakeTempDir();
  float one = 1.0f, two = 2.0f, yz[2] = {3.0f, 4.0f};
  EXPECT_TRUE(WriteSafetensors(dir + "/a.safetensors",
                               {{"x", DType::kF32, {1}, &one, 4}})
                  .ok());
  EXPECT_TRUE(WriteSafetensors(dir + "/b.safetensors",
                               {{"y", DType::kF32, {1}, &two, 4}})
                  .ok());
  EXPECT_TRUE(WriteSafetensors(dir + "/c.safetensors",
                               {{"y", DType::kF32, {1}, &yz[0], 4},
                                {"z", DType::kF32, {1}, &yz[1], 4}})
                  .ok());
  return dir;
}

absl::Status LoadWithIndex(const std::string& dir, const std::string& json) {
  WriteFile(dir + "/model.safetensors.index.json", json);
  return LoadShardedSafetensors(dir).status();
}

TEST(ShardedCheckpoint, ValidHandBuiltIndexLoads) {
  std::string dir = MakeShards();
  EXPECT_TRUE(LoadWithIndex(dir, R"({"metadata": {}, "weight_map":
      {"x": "a.safetensors", "y": "b.safetensors"}})")
                  .ok());
}

TEST(ShardedCheckpoint, RejectsBrokenIndexes) {
  std::string dir = MakeShards();
  struct Case {
    const char* json;
    const char* error;
  } cases[] = {
      {"{", "not valid JSON"},
      {"[]", "not a JSON object"},
      {R"({"metadata": {}})", "missing \"weight_map\""},
      {R"({"weight_map": {}})", "is empty"},
      {R"({"weight_map": {"x": 3}})", "is not a file name"},
      {R"({"weight_map": {"x": "../a.safetensors", "y": "b.safetensors"}})",
       "not a file name in the index's folder"},
      {R"({"weight_map": {"x": "a.safetensors", "y": "d.safetensors"}})",
       "do not exist"},
      {R"({"weight_map": {"x": "a.safetensors", "x": "b.safetensors",
          "y": "b.safetensors"}})",
       "key \"x\" appears twice"},
      {R"({"weight_map": {"x": "a.safetensors", "y": "c.safetensors"}})",
       "\"z\" is in c.safetensors but not in weight_map"},
      {R"({"weight_map": {"x": "a.safetensors", "y": "b.safetensors",
          "z": "c.safetensors"}})",
       "\"y\" is in c.safetensors but weight_map maps it to b.safetensors"},
      {R"({"weight_map": {"x": "b.safetensors", "y": "b.safetensors"}})",
       "\"x\" is mapped to b.safetensors but that file does not hold it"},
  };
  for (const Case& c : cases) {
    absl::Status s = LoadWithIndex(dir, c.json);
    EXPECT_FALSE(s.ok()) << c.json;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.error)) << c.json;
    EXPECT_THAT(std::string(s.message()),
                HasSubstr("model.safetensors.index.json"))
        << c.json;
  }
}

TEST(ShardedCheckpoint, MissingIndexNamesTheDirectory) {
  std::string dir = MakeTempDir();
  absl::Status s = LoadShardedSafetensors(dir).status();
  EXPECT_THAT(std::string(s.message()),
              HasSubstr(dir + ": expected one *.safetensors.index.json"));
}

}  // namespace
}  // namespace lvs::io
