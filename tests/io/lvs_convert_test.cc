// lvs-convert end to end: converts the golden .pth fixtures, writes
// config.json from model_args, verifies, and refuses a pickle that names a
// forbidden global.
#include <stdio.h>
#include <sys/wait.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/io/checkpoint.h"
#include "model/io/torch_pickle.h"
#include "tests/io/test_util.h"

namespace lvs::io {
namespace {

using namespace std::string_literals;

using testing::GoldenDir;
using ::testing::HasSubstr;
using testing::MakeTempDir;

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

RunResult RunConvert(const std::string& args) {
  RunResult r;
  const std::string cmd = std::string(LVS_CONVERT_BIN) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(LvsConvert, Fp32PthWithModelArgsAndVerify) {
  const std::string dir = MakeTempDir();
  const std::string out = dir + "/consolidated.00-of-01.safetensors";
  RunResult r = RunConvert(GoldenDir() + "/extras/consolidated.00-of-01.pth " +
                           out + " --model-args " + GoldenDir() +
                           "/dit/model_args.pth --verify");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("verified"));
  absl::StatusOr<TensorMap> got = LoadSafetensors(out);
  ASSERT_TRUE(got.ok()) << got.status();
  TensorMap want =
      *LoadSafetensors(GoldenDir() + "/dit/consolidated.00-of-01.safetensors");
  ASSERT_EQ(got->size(), want.size());
  for (const auto& [name, t] : want) {
    ASSERT_TRUE(got->count(name)) << name;
    EXPECT_TRUE(torch::equal(got->at(name), t)) << name;
  }
  nlohmann::json config =
      nlohmann::json::parse(testing::ReadFile(dir + "/config.json"));
  EXPECT_EQ(config, *ReadPickledArgs(GoldenDir() + "/dit/model_args.pth"));
}

TEST(LvsConvert, Bf16StaysBf16) {
  const std::string out = MakeTempDir() + "/bf16.safetensors";
  RunResult r =
      RunConvert(GoldenDir() + "/extras/consolidated_bf16_views.00-of-01.pth " +
                 out + " --verify");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  absl::StatusOr<std::shared_ptr<const SafetensorsFile>> f =
      SafetensorsFile::Open(out);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ((*f)->tensors().size(), 77u);
  for (const TensorRecord& rec : (*f)->tensors()) {
    EXPECT_EQ(rec.dtype, DType::kBF16) << rec.name;
  }
}

TEST(LvsConvert, RefusesForbiddenGlobalNamingIt) {
  const std::string dir = MakeTempDir();
  // protocol 2: GLOBAL 'posix system', ('ls',), REDUCE, STOP
  const std::string pickle = std::string("\x80\x02") + "cposix\nsystem\n" +
                             "X\x02\x00\x00\x00ls"s + "\x85" + "R.";
  testing::WriteFile(dir + "/evil.pth", testing::MakeTorchZip(pickle));
  RunResult r = RunConvert(dir + "/evil.pth " + dir + "/out.safetensors");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("global 'posix system' is not allowed"));
  EXPECT_THAT(r.output, HasSubstr("evil.pth"));
}

}  // namespace
}  // namespace lvs::io
