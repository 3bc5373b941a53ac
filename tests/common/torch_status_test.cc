#include "model/common/torch_status.h"

#include <c10/util/Exception.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <new>
#include <stdexcept>
#include <string>

#include "absl/strings/match.h"

namespace lvs::common {
namespace {

// Runs `fn`, which must throw, and converts what it threw.
template <typename Fn>
absl::Status Convert(Fn fn, const char* what) {
  try {
    fn();
  } catch (const std::exception& e) {
    return TorchErrorToStatus(e, what);
  }
  return absl::OkStatus();
}

TEST(TorchStatusTest, C10ErrorIsInternalWithoutBacktrace) {
  const absl::Status s =
      Convert([] { TORCH_CHECK(false, "shapes do not match"); }, "VAE decode");
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.message(), "VAE decode: shapes do not match");
}

TEST(TorchStatusTest, TorchOpErrorKeepsItsText) {
  const absl::Status s = Convert(
      [] {
        (void)torch::ones({2, 3}).matmul(torch::ones({2, 3}));
      },
      "sampler step 4");
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(absl::StartsWith(s.message(), "sampler step 4: ")) << s;
  EXPECT_EQ(std::string(s.message()).find("Exception raised from"),
            std::string::npos)
      << "the backtrace leaked into " << s;
}

TEST(TorchStatusTest, CudaOutOfMemoryTextIsResourceExhausted) {
  const absl::Status s = Convert(
      [] {
        TORCH_CHECK(false,
                    "CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0)");
      },
      "generation");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(),
            "generation: CUDA out of memory. Tried to allocate 20.00 GiB "
            "(GPU 0)");
}

TEST(TorchStatusTest, OutOfMemoryErrorTypeIsResourceExhausted) {
  // The type alone decides, whatever the text says.
  const absl::Status s = Convert(
      [] { TORCH_CHECK_WITH(OutOfMemoryError, false, "allocator gave up"); },
      "MultiScaleNextDiT");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "MultiScaleNextDiT: allocator gave up");
}

TEST(TorchStatusTest, RealCpuAllocationFailureIsResourceExhausted) {
  // 2^50 floats: the CPU allocator refuses at once.
  const absl::Status s =
      Convert([] { (void)torch::empty({int64_t{1} << 50}, torch::kFloat32); },
              "loading the models");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_TRUE(absl::StartsWith(s.message(), "loading the models: ")) << s;
}

TEST(TorchStatusTest, BadAllocIsResourceExhausted) {
  const absl::Status s = Convert([] { throw std::bad_alloc(); }, "VAE encode");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "VAE encode: out of host memory");
}

TEST(TorchStatusTest, OtherStdExceptionIsInternal) {
  const absl::Status s = Convert(
      [] { throw std::runtime_error("index 7 is out of bounds"); }, "conform");
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.message(), "conform: index 7 is out of bounds");
}

TEST(TorchStatusTest, StdExceptionNamingMemoryIsResourceExhausted) {
  const absl::Status s = Convert(
      [] {
        throw std::runtime_error(
            "DefaultCPUAllocator: can't allocate memory: you tried to "
            "allocate 8 bytes");
      },
      "text encoder forward");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
}

TEST(TorchStatusTest, IsOutOfMemoryMessage) {
  EXPECT_TRUE(IsOutOfMemoryMessage("CUDA out of memory. Tried to allocate"));
  EXPECT_TRUE(IsOutOfMemoryMessage("DefaultCPUAllocator: not enough memory"));
  EXPECT_TRUE(IsOutOfMemoryMessage("can't allocate memory: you tried"));
  EXPECT_FALSE(IsOutOfMemoryMessage("memory format is not contiguous"));
  EXPECT_FALSE(IsOutOfMemoryMessage(""));
}

}  // namespace
}  // namespace lvs::common
