// The whitelisting pickle VM: the opcodes torch.save and argparse pickles
// use give the right values; forbidden globals and every malformed input
// give an error naming the source and the problem, never a crash.
#include "model/io/pickle.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/io/torch_pickle.h"
#include "model/io/zip.h"
#include "tests/io/pickle_builder.h"
#include "tests/io/test_util.h"

namespace lvs::io {
namespace {

using namespace std::string_literals;

using testing::Global;
using ::testing::HasSubstr;
using testing::Int;
using testing::Le;
using testing::Proto;
using testing::Str;
using Kind = PyValue::Kind;

std::string ErrorOf(const std::string& pickle) {
  absl::StatusOr<PickleResult> r = Unpickle(pickle, "test.pkl");
  EXPECT_FALSE(r.ok()) << "accepted";
  return r.ok() ? "" : std::string(r.status().message());
}

TEST(Pickle, PlainValuesAndContainers) {
  // {'a': [1, -2, 3.5, None, True], 'b': ('x', b'y'), 'c': {1, 2}}
  const std::string p = Proto(2) + "}q\x00("s + Str("a") + "](K\x01" + Int(-2) +
                        "G\x40\x0c\x00\x00\x00\x00\x00\x00"s + "N\x88" + "e" +
                        Str("b") + Str("x") + "C\x01y" + "\x86" + Str("c") +
                        "\x8f(K\x01K\x02\x90" + "u.";
  absl::StatusOr<PickleResult> r = Unpickle(p, "test.pkl");
  ASSERT_TRUE(r.ok()) << r.status();
  const PyValue& root = r->root();
  ASSERT_EQ(root.kind, Kind::kDict);
  const PyValue* a = root.Get("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->items.size(), 5u);
  EXPECT_EQ(a->items[0]->i, 1);
  EXPECT_EQ(a->items[1]->i, -2);
  EXPECT_EQ(a->items[2]->f, 3.5);
  EXPECT_EQ(a->items[3]->kind, Kind::kNone);
  EXPECT_TRUE(a->items[4]->b);
  EXPECT_EQ(root.Get("b")->items[1]->kind, Kind::kBytes);
  EXPECT_EQ(root.Get("c")->kind, Kind::kSet);
  EXPECT_EQ(root.Get("c")->items.size(), 2u);
}

TEST(Pickle, Protocol4FramesMemoizeAndStackGlobal) {
  // OrderedDict via STACK_GLOBAL + MEMOIZE inside a FRAME; LONG1 ints.
  std::string body = Str("collections") + "\x94" + Str("OrderedDict") +
                     "\x94\x93\x94)R\x94" + Str("k") + "\x8a\x02\xff\x7f" +
                     "s" + Str("m") + "\x8a\x01\xff" + "s.";
  const std::string p = Proto(4) + "\x95" + Le(body.size(), 8) + body;
  absl::StatusOr<PickleResult> r = Unpickle(p, "test.pkl");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->root().kind, Kind::kDict);
  EXPECT_EQ(r->root().Get("k")->i, 0x7fff);
  EXPECT_EQ(r->root().Get("m")->i, -1);
}

TEST(Pickle, SimpleNamespaceToJson) {
  const std::string p = Proto(2) + Global("types", "SimpleNamespace") + ")R}(" +
                        Str("lr") + "G\x3f\xf0\x00\x00\x00\x00\x00\x00"s +
                        Str("sizes") +
                        "](K\x02K\x04"
                        "e" +
                        Str("none") + "N" + "ub.";
  absl::StatusOr<PickleResult> r = Unpickle(p, "args.pkl");
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<nlohmann::json> j = PickledArgsToJson(r->root(), "args.pkl");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(*j, nlohmann::json::parse(
                    R"({"lr": 1.0, "sizes": [2, 4], "none": null})"));
}

TEST(Pickle, WhitelistedCallsBuildTheirValues) {
  // _rebuild_parameter(_rebuild_tensor_v2(...), True, OrderedDict())
  const std::string tensor = testing::Tensor(
      "BFloat16Storage", "7", 6, 2, "K\x02K\x02\x86", "K\x01K\x02\x86");
  const std::string p =
      Proto(2) + "(" + Str("w") + Global("torch._utils", "_rebuild_parameter") +
      tensor + "\x88" + Global("collections", "OrderedDict") + ")R" + "\x87R" +
      Str("dev") + Global("torch", "device") + Str("cuda") + "K\x01" + "\x86R" +
      Str("s") + Global("builtins", "frozenset") + "](K\x01K\x02" + "e\x85R" +
      Str("ns") + Global("argparse", "Namespace") + ")}" + "\x92" + "d.";
  absl::StatusOr<PickleResult> r = Unpickle(p, "calls.pkl");
  ASSERT_TRUE(r.ok()) << r.status();
  const PyValue* w = r->root().Get("w");
  ASSERT_EQ(w->kind, Kind::kTensor);
  EXPECT_TRUE(w->requires_grad);
  EXPECT_EQ(w->i, 2);
  EXPECT_EQ(w->sizes, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(w->strides, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(w->items[0]->kind, Kind::kStorage);
  EXPECT_EQ(w->items[0]->dtype, DType::kBF16);
  EXPECT_EQ(w->items[0]->str, "7");
  EXPECT_EQ(r->root().Get("dev")->str, "cuda:1");
  EXPECT_EQ(r->root().Get("s")->items.size(), 2u);
  EXPECT_EQ(r->root().Get("ns")->kind, Kind::kNamespace);
  EXPECT_EQ(r->root().Get("ns")->str, "argparse.Namespace");
}

TEST(Pickle, ForbiddenGlobalsAreNamed) {
  EXPECT_THAT(ErrorOf(Proto(2) + Global("os", "system") + Str("ls") + "\x85R."),
              HasSubstr("global 'os system' is not allowed"));
  EXPECT_THAT(ErrorOf(Proto(2) + Global("posix", "system") + "."),
              HasSubstr("global 'posix system' is not allowed"));
  EXPECT_THAT(ErrorOf(Proto(4) + Str("builtins") + Str("eval") + "\x93" + "."),
              HasSubstr("global 'builtins eval' is not allowed"));
  EXPECT_THAT(ErrorOf(Proto(2) + Global("torch", "QInt8Storage") + "."),
              HasSubstr("global 'torch QInt8Storage' is not allowed"));
  // The error names the source, the byte offset and the opcode.
  EXPECT_THAT(ErrorOf(Proto(2) + Global("os", "system") + "."),
              HasSubstr("test.pkl: invalid pickle at byte 2 (opcode 0x63 "
                        "GLOBAL)"));
}

TEST(Pickle, MalformedInputsAreErrors) {
  struct Case {
    std::string pickle;
    const char* error;
  } cases[] = {
      {"", "input ends before STOP"},
      {Proto(2) + "\xff", "unknown opcode"},
      {Proto(2) + "I1\n.", "opcode not supported"},
      {Proto(2) + "\x82\x01.", "opcode not supported"},  // EXT1
      {Proto(6) + "N.", "protocol 6 unsupported"},
      {Proto(2) + "h\x05.", "memo index 5 was never stored"},
      {Proto(2) + "N" + "j\xff\xff\xff\x7f.", "memo index 2147483647"},
      {Proto(2) + "X\xff\xff\xff\xff", "needs 4294967295 bytes"},
      {Proto(4) + "\x8d" + Le(uint64_t{1} << 63, 8),
       "needs 9223372036854775808 bytes"},
      {Proto(4) + "\x95" + Le(uint64_t{1} << 62, 8), "frame runs past"},
      {Proto(2) + "J\x01\x00"s, "needs 4 bytes but only 2 remain"},
      {Proto(2) + "\x8a\x09" + std::string(9, '\x01') + ".",
       "9-byte integer exceeds 64 bits"},
      {Proto(2) + "\x8b\xff\xff\xff\xff", "negative LONG4 length"},
      {Proto(2) + "t.", "no MARK to pop to"},
      {Proto(2) + "a.", "stack underflow"},
      {Proto(2) + "(a.", "stack underflow"},
      {Proto(2) + "NN.", "STOP with 2 values"},
      {Proto(2) + "(N.", "1 open MARKs"},
      {Proto(2) + "]q\x00h\x00"s + "a.", "cannot contain itself"},
      {Proto(2) + "]q\x00]h\x00"s + "a" + "h\x00N"s + "a.", "already nested"},
      {Proto(2) + "NK\x01" + "a.", "expects a list, found a None"},
      {Proto(2) + "}K\x01s.", "stack underflow"},
      {Proto(2) + "X\x02\x00\x00\x00\xc3\x28."s, "not valid UTF-8"},
      {Proto(2) + "c" + std::string(300, 'a'), "not terminated"},
      {Proto(2) + "N)R.", "calls a None"},
      {Proto(2) + Global("collections", "OrderedDict") + "NR.",
       "arguments are not a tuple"},
      {Proto(2) + Global("torch._utils", "_rebuild_tensor_v2") + ")R.",
       "takes 6 or 7 arguments"},
      {Proto(2) + "(" + Str("storage") + Global("torch", "FloatStorage") +
           Str("0") + Str("cpu") + Int(-4) + "tQ.",
       "negative storage size"},
      {Proto(2) + "(" + Str("file") + "tQ.", "persistent id is not"},
      {Proto(2) + "K\x01}b.", "BUILD on a int"},
      {Proto(2) + "}K\x01" + "b.", "BUILD state is a int"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ErrorOf(c.pickle), HasSubstr(c.error)) << c.error;
    EXPECT_THAT(ErrorOf(c.pickle), HasSubstr("test.pkl")) << c.error;
  }
}

TEST(Pickle, DeepNestingIsBounded) {
  // 100000 MARKs: bounded by kMaxPickleDepth, not by the input.
  EXPECT_THAT(ErrorOf(Proto(2) + std::string(100000, '(')),
              HasSubstr("open MARKs"));
  // Lists nested 100000 deep: each step appends the memoised previous
  // value to a new list and memoises that list.
  std::string p = Proto(2) + "Nq\x00"s + "0";
  for (int i = 0; i < 100000; ++i) p += "]h\x00"s + "aq\x00"s + "0";
  EXPECT_THAT(ErrorOf(p + "h\x00."s), HasSubstr("nested deeper than"));
  // Tuples nested through TUPLE1.
  std::string q = Proto(2) + "N" + std::string(100000, '\x85') + ".";
  EXPECT_THAT(ErrorOf(q), HasSubstr("nested deeper than"));
  // Just under the bound is fine.
  std::string ok = Proto(2) + "N" + std::string(kMaxPickleDepth, '\x85') + ".";
  EXPECT_TRUE(Unpickle(ok, "ok.pkl").ok());
}

TEST(Pickle, StackAndValueCountsAreBounded) {
  EXPECT_THAT(ErrorOf(Proto(2) + std::string(kMaxPickleStack + 1, 'N')),
              HasSubstr("stack deeper than"));
  // A long list of ints stays bounded by kMaxPickleValues.
  std::string p = Proto(2) + "]";
  for (size_t i = 0; i < kMaxPickleValues + 10; ++i)
    p += "K\x01"
         "a";
  EXPECT_THAT(ErrorOf(p + "."), HasSubstr("values"));
}

TEST(Pickle, EveryPrefixOfTheGoldenPicklesFailsCleanly) {
  for (const char* file :
       {"/dit/model_args.pth", "/extras/model_args_simplenamespace.pth",
        "/extras/consolidated_bf16_views.00-of-01.pth"}) {
    absl::StatusOr<std::shared_ptr<const ZipArchive>> zip =
        ZipArchive::Open(testing::GoldenDir() + file);
    ASSERT_TRUE(zip.ok()) << zip.status();
    std::string prefix;
    ASSERT_TRUE(ReadArchivePickle(**zip, &prefix).ok());
    const ZipEntry* pkl = (*zip)->Find(prefix + "data.pkl");
    ASSERT_NE(pkl, nullptr);
    const std::string bytes(reinterpret_cast<const char*>((*zip)->data(*pkl)),
                            pkl->size);
    for (size_t n = 0; n < bytes.size(); ++n) {
      EXPECT_FALSE(Unpickle(bytes.substr(0, n), file).ok()) << file << " " << n;
    }
    EXPECT_TRUE(Unpickle(bytes, file).ok());
  }
}

}  // namespace
}  // namespace lvs::io
