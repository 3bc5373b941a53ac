// Peak-memory probes for the pipeline's per-stage reports: the process RSS
// high-water mark (Linux /proc; reset through /proc/self/clear_refs) and,
// in CUDA builds, the CUDA caching allocator's peak and current bytes.
//
// Thread-safety: the probes are process-wide; resetting a peak while
// another thread measures one mixes their stages.
#ifndef LVS_MODEL_PIPELINE_MEMORY_STATS_H_
#define LVS_MODEL_PIPELINE_MEMORY_STATS_H_

#include <c10/core/Device.h>

#include <cstdint>

namespace lvs::pipeline {

// Starts a new peak window: resets the RSS high-water mark (when the kernel
// allows it) and, on a CUDA device, the allocator's peak statistics.
void ResetPeakMemory(const c10::Device& device);

// Returns the process RSS high-water mark since the last reset, in bytes
// (0 when unreadable).
int64_t PeakRssBytes();

// Returns the CUDA allocator's peak allocated bytes since the last reset on
// `device` (0 on the CPU or in a build without CUDA).
int64_t CudaPeakBytes(const c10::Device& device);

// Returns the bytes the CUDA allocator has allocated now on `device` (0 on
// the CPU or in a build without CUDA).
int64_t CudaAllocatedBytes(const c10::Device& device);

}  // namespace lvs::pipeline

#endif  // LVS_MODEL_PIPELINE_MEMORY_STATS_H_
