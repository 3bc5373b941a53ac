// Tokenizer tests: exact ids, masks, lengths and pieces on every golden
// case, the batching rules, errors, and loading SentencePiece in a process
// that also runs gRPC, protobuf 3.21 and LibTorch.
#include "model/text_encoder/tokenizer.h"

#include <google/protobuf/stubs/common.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "model/io/torch_tensors.h"
#include "nlohmann/json.hpp"

namespace lvs::text_encoder {
namespace {

const std::string kGolden = LVS_GOLDEN_DIR;
const std::string kModel = kGolden + "/text_encoder/tokenizer.model";

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

std::string ProcessMaps() {
  std::ifstream in("/proc/self/maps");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::unique_ptr<Tokenizer> Load(const TokenizerOptions& options = {}) {
  auto tokenizer = Tokenizer::Create(kModel, options);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif
#else
constexpr bool kAsan = false;
#endif

// Skips in AddressSanitizer builds, where the shim cannot be loaded (it
// needs RTLD_DEEPBIND; see tokenizer.cc).
class TokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (kAsan) GTEST_SKIP() << "AddressSanitizer build: no RTLD_DEEPBIND";
  }
};
using TokenizerDeathTest = TokenizerTest;

// The shim is loaded into a process that has gRPC, protobuf 3.21 and
// LibTorch loaded and in use (without RTLD_DEEPBIND, libsentencepiece's
// protobuf 3.14 version check aborts such a process).
TEST_F(TokenizerTest, LoadsBesideGrpcProtobufAndLibTorch) {
  GOOGLE_PROTOBUF_VERIFY_VERSION;
  EXPECT_FALSE(grpc::Version().empty());
  auto channel =
      grpc::CreateChannel("localhost:1", grpc::InsecureChannelCredentials());
  EXPECT_NE(channel, nullptr);
  EXPECT_EQ(torch::ones({2, 2}).sum().item<float>(), 4.0f);
  const std::string maps = ProcessMaps();
  EXPECT_NE(maps.find("libgrpc++"), std::string::npos);
  EXPECT_NE(maps.find("libprotobuf.so"), std::string::npos);
  EXPECT_NE(maps.find("libtorch"), std::string::npos);

  std::unique_ptr<Tokenizer> tokenizer = Load();
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_NE(ProcessMaps().find("libsentencepiece"), std::string::npos);
  auto ids = tokenizer->EncodeIds("A red panda");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_FALSE(ids->empty());
}

TEST_F(TokenizerTest, MatchesEveryGoldenCase) {
  const nlohmann::json sidecar = ReadJson(kGolden + "/vectors/tokenizer.json");
  auto golden = io::LoadSafetensors(kGolden + "/vectors/tokenizer.safetensors");
  ASSERT_TRUE(golden.ok()) << golden.status();
  std::unique_ptr<Tokenizer> tokenizer = Load();
  ASSERT_NE(tokenizer, nullptr);
  int cases = 0;
  for (const auto& [name, spec] : sidecar["cases"].items()) {
    SCOPED_TRACE(name);
    ++cases;
    const auto texts = spec["texts"].get<std::vector<std::string>>();
    auto batch = tokenizer->Encode(texts);
    ASSERT_TRUE(batch.ok()) << batch.status();
    const torch::Tensor& ids = golden->at(name + ".input_ids");
    const torch::Tensor& mask = golden->at(name + ".attention_mask");
    ASSERT_EQ(batch->input_ids.sizes(), ids.sizes());
    EXPECT_TRUE(batch->input_ids.equal(ids));
    EXPECT_TRUE(batch->attention_mask.equal(mask));
    EXPECT_EQ(batch->input_ids.size(1), spec["padded_length"].get<int64_t>());
    const auto original =
        spec["untruncated_lengths_with_bos"].get<std::vector<int64_t>>();
    const auto kept = spec["lengths_with_bos"].get<std::vector<int64_t>>();
    EXPECT_EQ(batch->original_lengths, original);
    for (size_t i = 0; i < texts.size(); ++i) {
      EXPECT_EQ(batch->truncated[i], original[i] > kept[i]) << "text " << i;
      EXPECT_EQ(batch->attention_mask[i].sum().item<int64_t>(), kept[i]);
      const auto pieces = spec["pieces"][i].get<std::vector<std::string>>();
      for (size_t j = 0; j < pieces.size(); ++j) {
        EXPECT_EQ(tokenizer->IdToPiece(ids[i][j].item<int64_t>()), pieces[j])
            << "text " << i << " piece " << j;
      }
    }
  }
  EXPECT_GE(cases, 4);
}

TEST_F(TokenizerTest, BosPaddingAndTruncationRules) {
  TokenizerOptions options;
  options.max_length = 5;
  options.pad_to_multiple_of = 4;
  std::unique_ptr<Tokenizer> tokenizer = Load(options);
  ASSERT_NE(tokenizer, nullptr);
  auto long_ids = tokenizer->EncodeIds("the quick brown fox jumps");
  ASSERT_TRUE(long_ids.ok());
  ASSERT_GT(long_ids->size(), 4u);
  auto batch = tokenizer->Encode({"the quick brown fox jumps", "", "a"});
  ASSERT_TRUE(batch.ok()) << batch.status();
  // Longest kept row is 5 ids -> padded to 8.
  ASSERT_EQ(batch->input_ids.sizes(), (std::vector<int64_t>{3, 8}));
  EXPECT_EQ(batch->original_lengths[0],
            static_cast<int64_t>(long_ids->size()) + 1);
  EXPECT_TRUE(batch->truncated[0]);
  EXPECT_FALSE(batch->truncated[1]);
  EXPECT_EQ(batch->original_lengths[1], 1);
  EXPECT_EQ(batch->input_ids[0][0].item<int64_t>(), tokenizer->bos_id());
  for (int j = 1; j < 5; ++j) {
    EXPECT_EQ(batch->input_ids[0][j].item<int64_t>(), (*long_ids)[j - 1]);
  }
  EXPECT_EQ(batch->attention_mask[0].sum().item<int64_t>(), 5);
  EXPECT_EQ(batch->attention_mask[1].sum().item<int64_t>(), 1);
  EXPECT_TRUE(batch->input_ids[1]
                  .slice(0, 1)
                  .eq(tokenizer->pad_id())
                  .all()
                  .item<bool>());
  EXPECT_EQ(batch->input_ids.scalar_type(), torch::kLong);
  EXPECT_EQ(batch->attention_mask.scalar_type(), torch::kLong);
}

TEST_F(TokenizerTest, ConcurrentEncodeMatchesSerial) {
  std::unique_ptr<Tokenizer> tokenizer = Load();
  ASSERT_NE(tokenizer, nullptr);
  const std::vector<std::string> texts = {"Café 東京 🎬", "  a\tb\n", "x"};
  auto serial = tokenizer->Encode(texts);
  ASSERT_TRUE(serial.ok());
  std::vector<std::thread> threads;
  std::vector<int> equal(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      bool same = true;
      for (int k = 0; k < 50; ++k) {
        auto got = tokenizer->Encode(texts);
        same = same && got.ok() && got->input_ids.equal(serial->input_ids);
      }
      equal[t] = same;
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_TRUE(equal[t]) << "thread " << t;
}

TEST_F(TokenizerTest, ErrorsNameTheFile) {
  auto missing = Tokenizer::Create("/nonexistent/dir/tokenizer.model");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/dir/tokenizer.model"),
            std::string::npos);

  const std::string not_a_model = kGolden + "/text_encoder/config.json";
  auto bad = Tokenizer::Create(not_a_model);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find(not_a_model), std::string::npos);

  std::unique_ptr<Tokenizer> tokenizer = Load();
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Encode({}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(tokenizer->IdToPiece(-1), "");
  EXPECT_EQ(tokenizer->IdToPiece(tokenizer->vocab_size()), "");

  TokenizerOptions zero;
  zero.pad_to_multiple_of = 0;
  EXPECT_EQ(Tokenizer::Create(kModel, zero).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A fresh process (threadsafe death test) whose LVS_SP_SHIM points nowhere:
// the error names the path that was tried.
TEST_F(TokenizerDeathTest, MissingShimIsNamed) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("LVS_SP_SHIM", "/nonexistent/liblvs_sp_shim.so", 1);
        auto t = Tokenizer::Create(kModel);
        std::fprintf(stderr, "%s\n", std::string(t.status().message()).c_str());
        std::exit(t.ok() ? 1 : 0);
      },
      testing::ExitedWithCode(0), "/nonexistent/liblvs_sp_shim.so");
}

}  // namespace
}  // namespace lvs::text_encoder
