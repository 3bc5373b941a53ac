#include "model/common/cpu_buffer_cache.h"

#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>
#include <torch/version.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace lvs::common {
namespace {

constexpr size_t kPage = 4096;

// LibTorch 2.3 made Allocator::allocate non-const and added copy_data.
#if TORCH_VERSION_MAJOR > 2 || \
    (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define LVS_ALLOCATE_CONST
#define LVS_ALLOCATOR_COPY_DATA 1
#else
#define LVS_ALLOCATE_CONST const
#define LVS_ALLOCATOR_COPY_DATA 0
#endif

class BufferCache final : public c10::Allocator {
 public:
  explicit BufferCache(c10::Allocator* fallback) : fallback_(fallback) {}

  c10::DataPtr allocate(size_t n) LVS_ALLOCATE_CONST override {
    if (n < kMinCachedBytes) return fallback_->allocate(n);
    const size_t size = (n + kPage - 1) / kPage * kPage;
    void* ptr = Take(size);
    if (ptr == nullptr) {
      ptr = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      absl::MutexLock lock(&mu_);
      if (ptr == MAP_FAILED) {
        live_bytes_ -= size;
        throw std::bad_alloc();
      }
      live_[ptr] = size;
    }
    // The context is the pointer itself, as LibTorch's raw_allocate()
    // expects of every CPU allocator.
    return {ptr, ptr, &Delete, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &Delete; }

#if LVS_ALLOCATOR_COPY_DATA
  void copy_data(void* dest, const void* src, size_t count) const override {
    std::memcpy(dest, src, count);
  }
#endif

  void Release() const {
    std::vector<Cached> drop;
    {
      absl::MutexLock lock(&mu_);
      EvictLocked(0, drop);
    }
    Unmap(drop);
  }

  CpuBufferCacheStats Stats() const {
    absl::MutexLock lock(&mu_);
    CpuBufferCacheStats s;
    s.installed = true;
    s.hits = hits_;
    s.misses = misses_;
    s.live_bytes = static_cast<int64_t>(live_bytes_);
    s.peak_live_bytes = static_cast<int64_t>(peak_live_bytes_);
    s.cached_bytes = static_cast<int64_t>(cached_bytes_);
    s.released_bytes = static_cast<int64_t>(released_bytes_);
    return s;
  }

  // Frees `ptr`: into the cache when it is one of ours, else through the
  // allocator behind (raw_deallocate of its small buffers).
  static void Delete(void* ptr);

 private:
  struct Cached {
    void* ptr;
    size_t size;
    uint64_t freed;  // Order of freeing: the oldest is evicted first.
  };

  // Moves a live buffer of ours into the cache; false if `ptr` is not one.
  bool Put(void* ptr) const {
    absl::MutexLock lock(&mu_);
    auto it = live_.find(ptr);
    if (it == live_.end()) return false;
    const size_t size = it->second;
    live_.erase(it);
    live_bytes_ -= size;
    free_[size].push_back({ptr, size, ++clock_});
    cached_bytes_ += size;
    return true;
  }

  // A cached buffer of exactly `size` bytes (the last freed), or nullptr
  // when there is none: the caller then maps a fresh buffer, and the oldest
  // cached buffers are unmapped first so that live plus cached bytes stay
  // within the highest live bytes seen (the resident set without a cache).
  void* Take(size_t size) const {
    std::vector<Cached> drop;
    {
      absl::MutexLock lock(&mu_);
      live_bytes_ += size;
      auto it = free_.find(size);
      if (it != free_.end()) {
        void* ptr = it->second.back().ptr;
        it->second.pop_back();
        if (it->second.empty()) free_.erase(it);
        cached_bytes_ -= size;
        live_[ptr] = size;
        ++hits_;
        return ptr;
      }
      ++misses_;
      peak_live_bytes_ = std::max(peak_live_bytes_, live_bytes_);
      EvictLocked(peak_live_bytes_ - live_bytes_, drop);
    }
    Unmap(drop);
    return nullptr;
  }

  // Moves the oldest cached buffers to `drop` until at most `keep` bytes
  // stay cached.
  void EvictLocked(size_t keep, std::vector<Cached>& drop) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (cached_bytes_ > keep) {
      auto oldest = free_.end();
      for (auto it = free_.begin(); it != free_.end(); ++it) {
        if (oldest == free_.end() ||
            it->second.front().freed < oldest->second.front().freed) {
          oldest = it;
        }
      }
      drop.push_back(oldest->second.front());
      oldest->second.erase(oldest->second.begin());
      if (oldest->second.empty()) free_.erase(oldest);
      cached_bytes_ -= drop.back().size;
      released_bytes_ += drop.back().size;
    }
  }

  static void Unmap(const std::vector<Cached>& drop) {
    for (const Cached& c : drop) munmap(c.ptr, c.size);
  }

  c10::Allocator* const fallback_;
  // Mutable: LibTorch 1.13's Allocator::allocate is const.
  mutable absl::Mutex mu_;
  // Handed-out buffers and their sizes.
  mutable std::unordered_map<void*, size_t> live_ ABSL_GUARDED_BY(mu_);
  // Free buffers by size, each list in the order freed.
  mutable std::map<size_t, std::vector<Cached>> free_ ABSL_GUARDED_BY(mu_);
  mutable size_t live_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  mutable size_t peak_live_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  mutable size_t cached_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  mutable size_t released_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  mutable uint64_t clock_ ABSL_GUARDED_BY(mu_) = 0;
  mutable int64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
  mutable int64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
};

// The installed cache, or nullptr. Never destroyed: tensors may be freed
// during static destruction.
std::atomic<BufferCache*> g_cache{nullptr};

void BufferCache::Delete(void* ptr) {
  BufferCache* cache = g_cache.load();
  if (cache->Put(ptr)) return;
  c10::DeleterFnPtr fallback = cache->fallback_->raw_deleter();
  if (fallback != nullptr) fallback(ptr);
}

}  // namespace

bool InstallCpuBufferCache() {
  static const bool installed = [] {
    const char* env = std::getenv("LVS_CPU_BUFFER_CACHE");
    if (env != nullptr && std::string(env) == "0") return false;
    auto* cache = new BufferCache(c10::GetCPUAllocator());
    // Above the priority of LibTorch's own allocator (0).
    c10::SetCPUAllocator(cache, /*priority=*/1);
    g_cache.store(cache);
    return true;
  }();
  return installed;
}

void ReleaseCpuBufferCache() {
  if (BufferCache* c = g_cache.load()) c->Release();
}

CpuBufferCacheStats GetCpuBufferCacheStats() {
  BufferCache* c = g_cache.load();
  return c == nullptr ? CpuBufferCacheStats{} : c->Stats();
}

}  // namespace lvs::common
