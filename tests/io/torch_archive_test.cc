// torch.save archive layout (torch-free): tensor specs from hand-built
// archives, and every inconsistency between pickle and storage entries is
// an error naming the file and the tensor or entry.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/io/torch_pickle.h"
#include "tests/io/pickle_builder.h"
#include "tests/io/test_util.h"

namespace lvs::io {
namespace {

using namespace std::string_literals;

using ::testing::HasSubstr;
using testing::Int;
using testing::Le;
using testing::MakeTorchZip;
using testing::Proto;
using testing::Str;
using testing::Tensor;
using testing::ZipFile;

std::string Long8(int64_t v) { return "\x8a\x08" + Le(v, 8); }

// {name: tensor, ...} as an OrderedDict with a BUILD of `_metadata`.
std::string StateDict(
    const std::vector<std::pair<std::string, std::string>>& tensors) {
  std::string p =
      Proto(2) + testing::Global("collections", "OrderedDict") + ")Rq\x00("s;
  for (const auto& [name, t] : tensors) p += Str(name) + t;
  p += "u}" + Str("_metadata") + testing::Global("collections", "OrderedDict") +
       ")R" + "sb.";
  return p;
}

absl::StatusOr<TorchArchive> Parse(const std::string& zip) {
  return ParseTorchArchive(*ZipArchive::Parse(
      OwnedBytes(std::vector<uint8_t>(zip.begin(), zip.end()), "m.pth")));
}

std::string ErrorOf(const std::string& zip) {
  absl::StatusOr<TorchArchive> r = Parse(zip);
  EXPECT_FALSE(r.ok()) << "accepted";
  return r.ok() ? "" : std::string(r.status().message());
}

const std::string kSix(24, '\0');  // 6 floats

TEST(TorchArchive, SharedStorageViews) {
  const std::string p = StateDict({
      {"a",
       Tensor("FloatStorage", "0", 6, 0, "K\x02K\x03\x86", "K\x03K\x01\x86")},
      {"b", Tensor("FloatStorage", "0", 6, 2, "K\x02\x85", "K\x03\x85")},
      {"c",
       Tensor("FloatStorage", "0", 6, 0, "K\x03K\x02\x86", "K\x01K\x03\x86")},
  });
  absl::StatusOr<TorchArchive> a = Parse(MakeTorchZip(p, {{"0", kSix}}));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->prefix, "archive/");
  ASSERT_EQ(a->storages.size(), 1u);
  EXPECT_EQ(a->storages.at("0").numel, 6);
  ASSERT_EQ(a->tensors.size(), 3u);
  EXPECT_EQ(a->tensors[1].name, "b");
  EXPECT_EQ(a->tensors[1].storage_offset, 2);
  EXPECT_EQ(a->tensors[2].strides, (std::vector<int64_t>{1, 3}));
}

TEST(TorchArchive, NestedDictsGiveDottedNames) {
  const std::string p =
      Proto(2) + "}(" + Str("model") + "}(" + Str("w") +
      Tensor("HalfStorage", "k", 2, 0, "K\x02\x85", "K\x01\x85") + "u" +
      Str("step") + "K\x07" + "u.";
  absl::StatusOr<TorchArchive> a =
      Parse(MakeTorchZip(p, {{"k", std::string(4, '\0')}}));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->tensors.size(), 1u);
  EXPECT_EQ(a->tensors[0].name, "model.w");
  EXPECT_EQ(a->tensors[0].dtype, DType::kF16);
}

TEST(TorchArchive, InconsistentArchivesAreErrors) {
  auto one = [](const std::string& t) { return StateDict({{"w", t}}); };
  const std::string vec6 =
      Tensor("FloatStorage", "0", 6, 0, "K\x06\x85", "K\x01\x85");
  struct Case {
    std::string zip;
    const char* error;
  } cases[] = {
      {MakeTorchZip(one(vec6), {}),
       "tensor \"w\": storage entry \"archive/data/0\" is missing"},
      {MakeTorchZip(one(vec6), {{"0", std::string(20, '\0')}}),
       "bad entry size: entry \"archive/data/0\" has 20 bytes but its "
       "storage holds 6 F32 elements"},
      {MakeTorchZip(
           one(Tensor("FloatStorage", "0", 6, 5, "K\x02\x85", "K\x03\x85")),
           {{"0", kSix}}),
       "tensor \"w\" (offset 5, size [2], stride [3]) reaches past its "
       "storage \"0\" of 6 elements"},
      {MakeTorchZip(one(Tensor("FloatStorage", "0", 6, 0,
                               Long8(int64_t{1} << 40) + "K\x02\x86",
                               Long8(int64_t{1} << 40) + "K\x01\x86")),
                    {{"0", kSix}}),
       "reaches past its storage"},
      {MakeTorchZip(StateDict({{"a", vec6},
                               {"b", Tensor("HalfStorage", "0", 6, 0,
                                            "K\x06\x85", "K\x01\x85")}}),
                    {{"0", kSix}}),
       "storage \"0\" is declared twice"},
      {MakeTorchZip(Proto(2) + "].", {}), "the pickle holds a list"},
      {testing::MakeZip({{"x/y", ""}}), "expected one <name>/data.pkl"},
      {testing::MakeZip({{"a/data.pkl", one(vec6)},
                         {"a/byteorder", "big"},
                         {"a/data/0", kSix}}),
       "byteorder \"big\" unsupported"},
      {MakeTorchZip(Proto(2) + testing::Global("os", "system") + ".", {}),
       "global 'os system' is not allowed"},
  };
  for (const Case& c : cases) {
    const std::string err = ErrorOf(c.zip);
    EXPECT_THAT(err, HasSubstr(c.error)) << c.error;
    EXPECT_THAT(err, HasSubstr("m.pth")) << c.error;
  }
}

TEST(TorchArchive, DataPklCrcIsChecked) {
  std::string z = MakeTorchZip(StateDict({}), {});
  const size_t at = 30 + std::string("archive/data.pkl").size() + 3;
  z[at] ^= 0x01;
  EXPECT_THAT(ErrorOf(z), HasSubstr("CRC-32 mismatch"));
}

}  // namespace
}  // namespace lvs::io
