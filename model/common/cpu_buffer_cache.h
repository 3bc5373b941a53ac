// Reuse of large CPU tensor buffers. glibc maps every allocation above its
// mmap threshold (at most 32 MiB by default) afresh and unmaps it on free,
// so each new activation of a VAE decode page-faults on every 4 KiB page
// (17% of a float32 decode's CPU time). InstallCpuBufferCache() puts an
// allocator in front of LibTorch's CPU allocator that keeps freed buffers
// of at least kMinCachedBytes, keyed by their page-rounded size, and hands
// them out again for a request of the same size.
//
// Peak memory does not grow: a request that finds no cached buffer of its
// size unmaps the oldest cached buffers until the live and cached bytes
// together are within the most bytes ever live at once, then maps a fresh
// buffer; the cache therefore never holds the resident set above the peak
// it would have without the cache. Between requests the cache keeps the
// freed buffers (an idle process stays at its high-water mark until
// ReleaseCpuBufferCache()).
//
// LVS_CPU_BUFFER_CACHE=0 in the environment leaves LibTorch's allocator
// alone. The header is torch-free.
//
// Thread-safety: all functions are safe from any thread; the cache is
// guarded by one mutex. Tensors allocated before installation keep their
// own deleters.
#ifndef LVS_MODEL_COMMON_CPU_BUFFER_CACHE_H_
#define LVS_MODEL_COMMON_CPU_BUFFER_CACHE_H_

#include <cstddef>
#include <cstdint>

namespace lvs::common {

// Buffers below this size go to LibTorch's allocator unchanged.
inline constexpr size_t kMinCachedBytes = size_t{1} << 20;

// Counters of the cache since installation.
struct CpuBufferCacheStats {
  bool installed = false;
  int64_t hits = 0;             // Requests served from the cache.
  int64_t misses = 0;           // Requests that mapped a fresh buffer.
  int64_t live_bytes = 0;       // Handed out now.
  int64_t peak_live_bytes = 0;  // The most handed out at once so far.
  int64_t cached_bytes = 0;     // Held now, free.
  int64_t released_bytes = 0;   // Unmapped from the cache in total.
};

// Makes the cache LibTorch's CPU allocator, once per process, unless
// LVS_CPU_BUFFER_CACHE=0. Returns whether it is installed.
bool InstallCpuBufferCache();

// Unmaps every cached buffer (e.g. when a process goes idle).
void ReleaseCpuBufferCache();

CpuBufferCacheStats GetCpuBufferCacheStats();

}  // namespace lvs::common

#endif  // LVS_MODEL_COMMON_CPU_BUFFER_CACHE_H_
