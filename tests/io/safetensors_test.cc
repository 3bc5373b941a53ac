// The torch-free safetensors parser: golden checkpoints parse; every
// malformed header (truncation, huge lengths, bad offsets, overlaps, unknown
// dtypes, overflowing shapes) is an error naming the file and the problem.
#include "model/io/safetensors.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/io/sharded_checkpoint.h"
#include "tests/io/pickle_builder.h"
#include "tests/io/test_util.h"

namespace lvs::io {
namespace {

using namespace std::string_literals;

using ::testing::HasSubstr;
using testing::Le;

// A file with header `json` followed by `data_bytes` zero bytes.
std::string File(const std::string& json, size_t data_bytes) {
  return Le(json.size(), 8) + json + std::string(data_bytes, '\0');
}

std::string ErrorOf(const std::string& bytes) {
  auto r = SafetensorsFile::Parse(OwnedBytes(
      std::vector<uint8_t>(bytes.begin(), bytes.end()), "bad.safetensors"));
  EXPECT_FALSE(r.ok()) << "accepted";
  return r.ok() ? "" : std::string(r.status().message());
}

TEST(Safetensors, GoldenCheckpointDirectoriesParse) {
  const std::string g = testing::GoldenDir();
  auto dit =
      SafetensorsFile::Open(g + "/dit/consolidated.00-of-01.safetensors");
  ASSERT_TRUE(dit.ok()) << dit.status();
  EXPECT_EQ((*dit)->tensors().size(), 77u);
  for (const TensorRecord& t : (*dit)->tensors())
    EXPECT_EQ(t.dtype, DType::kF32);
  auto vae =
      SafetensorsFile::Open(g + "/vae/diffusion_pytorch_model.safetensors");
  ASSERT_TRUE(vae.ok()) << vae.status();
  EXPECT_EQ((*vae)->tensors().size(), 240u);
  for (const TensorRecord& t : (*vae)->tensors())
    EXPECT_EQ(t.dtype, DType::kF16);
  EXPECT_EQ((*vae)->metadata().at("format"), "pt");
  auto index =
      ParseShardIndex(g + "/text_encoder/model.safetensors.index.json");
  ASSERT_TRUE(index.ok()) << index.status();
  auto shards = OpenShards(*index);
  ASSERT_TRUE(shards.ok()) << shards.status();
  size_t n = 0;
  for (const auto& s : *shards) n += s->tensors().size();
  EXPECT_EQ(n, index->weight_map.size());
}

TEST(Safetensors, WriterOutputParsesBack) {
  const float x[3] = {1, 2, 3};
  const uint16_t h[2] = {0x3c00, 0x4000};
  auto bytes = SerializeSafetensors(
      {{"x", DType::kF32, {3}, x, 12}, {"h", DType::kF16, {1, 2}, h, 4}},
      {{"format", "pt"}});
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto f = SafetensorsFile::Parse(OwnedBytes(*bytes, "mem"));
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_NE((*f)->Find("h"), nullptr);
  EXPECT_EQ((*f)->Find("h")->shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(std::memcmp((*f)->Find("x")->data, x, 12), 0);
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
  EXPECT_FALSE(SerializeSafetensors({{"x", DType::kF32, {4}, x, 12}}).ok());
  EXPECT_FALSE(SerializeSafetensors({{"x", DType::kF32, {3}, x, 12},
                                     {"x", DType::kF32, {3}, x, 12}})
                   .ok());
}

TEST(Safetensors, MalformedFilesAreErrors) {
  const std::string one =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  struct Case {
    std::string bytes;
    const char* error;
  } cases[] = {
      {"", "shorter than the 8-byte header length"},
      {"\x05\x00\x00"s, "shorter than the 8-byte header length"},
      {Le(uint64_t{1} << 63, 8) + "{}",
       "header length 9223372036854775808 "
       "exceeds the limit"},
      {Le(1000, 8) + "{}", "past the end of the 10-byte file"},
      {File(one, 4), "data_offsets end 8 past the data section (4 bytes)"},
      {File("{", 0), "header is not valid JSON"},
      {File("[]", 0), "header is not a JSON object"},
      {File(R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", 1),
       "tensor \"a\": unknown dtype \"Q4\""},
      {File(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],)"
            R"("data_offsets":[0,0]}})",
            0),
       "shape x dtype size overflows"},
      {File(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0),
       "shape entries must be >= 0"},
      {File(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
       "byte length 8 != shape x dtype size 12"},
      {File(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8),
       "begin > end"},
      {File(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
            12),
       "overlaps the previous one"},
      {File(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
       "leaving a hole at 0"},
      {File(one, 12), "4 trailing bytes"},
      {File(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})",
            4),
       "unknown field \"x\""},
      {File(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4), "missing dtype"},
      {File(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4),
       "two non-negative integers"},
      {File(R"({"__metadata__":{"k":1}})", 0), "is not a string"},
  };
  for (const Case& c : cases) {
    const std::string err = ErrorOf(c.bytes);
    EXPECT_THAT(err, HasSubstr(c.error)) << c.error;
    EXPECT_THAT(err, HasSubstr("bad.safetensors")) << c.error;
  }
}

TEST(Safetensors, TruncatedGoldenFilesFailNamingTheFile) {
  const std::string path =
      testing::GoldenDir() + "/vae/diffusion_pytorch_model.safetensors";
  const std::string bytes = testing::ReadFile(path);
  const std::string dir = testing::MakeTempDir();
  for (size_t n : {size_t{0}, size_t{7}, size_t{8}, size_t{100},
                   bytes.size() / 2, bytes.size() - 1}) {
    const std::string cut = dir + "/cut.safetensors";
    testing::WriteFile(cut, bytes.substr(0, n));
    auto r = SafetensorsFile::Open(cut);
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(cut)) << n;
  }
  auto missing = SafetensorsFile::Open(dir + "/none.safetensors");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("none.safetensors"));
}

}  // namespace
}  // namespace lvs::io
