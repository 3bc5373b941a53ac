// The CPU buffer cache: installed by ConfigureCpuThreads, hands a freed
// large buffer out again without new page faults, keeps live plus cached
// bytes within the live peak, leaves small buffers to LibTorch, and
// LVS_CPU_BUFFER_CACHE=0 (the user's choice) keeps LibTorch's allocator.
#include "model/common/cpu_buffer_cache.h"

#include <c10/core/CPUAllocator.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <cstdlib>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "model/common/cpu_runtime.h"

namespace lvs::common {
namespace {

int64_t MinorFaults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// A float32 tensor of `mib` MiB with every page written.
torch::Tensor Filled(int64_t mib) {
  return torch::ones({mib * 1024 * 1024 / 4});
}

class CpuBufferCacheTest : public testing::Test {
 protected:
  void SetUp() override {
    ConfigureCpuThreads(1);
    ASSERT_TRUE(GetCpuBufferCacheStats().installed);
  }
};

TEST_F(CpuBufferCacheTest, FreedBufferIsReusedWithoutPageFaults) {
  void* first = nullptr;
  {
    torch::Tensor t = Filled(64);
    first = t.data_ptr();
  }
  const CpuBufferCacheStats before = GetCpuBufferCacheStats();
  const int64_t faults = MinorFaults();
  torch::Tensor again = Filled(64);
  const int64_t new_faults = MinorFaults() - faults;
  EXPECT_EQ(again.data_ptr(), first);
  EXPECT_EQ(GetCpuBufferCacheStats().hits, before.hits + 1);
  // 64 MiB of fresh pages would fault 16384 times.
  EXPECT_LT(new_faults, 1000);
}

TEST_F(CpuBufferCacheTest, SmallBuffersStayWithLibTorch) {
  const CpuBufferCacheStats before = GetCpuBufferCacheStats();
  for (int i = 0; i < 100; ++i) Filled(0).add_(1);
  torch::Tensor small = torch::ones({1000});
  const CpuBufferCacheStats after = GetCpuBufferCacheStats();
  EXPECT_EQ(after.hits, before.hits);
  EXPECT_EQ(after.misses, before.misses);
  EXPECT_EQ(small.sum().item<float>(), 1000);
}

TEST_F(CpuBufferCacheTest, LiveAndCachedStayWithinThePeak) {
  ReleaseCpuBufferCache();
  std::mt19937 rng(7);
  std::vector<torch::Tensor> held;
  for (int step = 0; step < 300; ++step) {
    if (!held.empty() && rng() % 2 == 0) {
      held.erase(held.begin() + rng() % held.size());
    } else {
      held.push_back(Filled(1 + rng() % 6));
    }
    const CpuBufferCacheStats s = GetCpuBufferCacheStats();
    ASSERT_LE(s.live_bytes + s.cached_bytes, s.peak_live_bytes)
        << "step " << step;
  }
  held.clear();
  const CpuBufferCacheStats s = GetCpuBufferCacheStats();
  EXPECT_GT(s.hits, 0);
  EXPECT_GT(s.cached_bytes, 0);
  ReleaseCpuBufferCache();
  EXPECT_EQ(GetCpuBufferCacheStats().cached_bytes, 0);
}

TEST_F(CpuBufferCacheTest, RawAllocationsRoundTrip) {
  c10::Allocator* alloc = c10::GetCPUAllocator();
  for (size_t bytes : {size_t{100}, size_t{8} << 20}) {
    void* p = alloc->raw_allocate(bytes);
    ASSERT_NE(p, nullptr);
    static_cast<char*>(p)[bytes - 1] = 1;
    alloc->raw_deallocate(p);
  }
}

TEST(CpuBufferCacheEnv, UsersZeroKeepsLibTorchsAllocator) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // The child re-runs this test alone: nothing is installed before.
  EXPECT_EXIT(
      {
        setenv("LVS_CPU_BUFFER_CACHE", "0", 1);
        c10::Allocator* before = c10::GetCPUAllocator();
        ConfigureCpuThreads(1);
        const bool kept = c10::GetCPUAllocator() == before &&
                          !GetCpuBufferCacheStats().installed;
        std::exit(kept ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace lvs::common
