#include "model/pipeline/memory_stats.h"

#include <fstream>
#include <string>

#if LVS_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace lvs::pipeline {

void ResetPeakMemory(const c10::Device& device) {
  // "5" resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0).
  std::ofstream("/proc/self/clear_refs") << "5";
#if LVS_WITH_CUDA
  if (device.is_cuda()) {
    c10::cuda::CUDACachingAllocator::resetPeakStats(
        device.index() < 0 ? 0 : device.index());
  }
#endif
}

int64_t PeakRssBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      return std::stoll(line.substr(6)) * 1024;  // "VmHWM:  1234 kB".
    }
  }
  return 0;
}

int64_t CudaPeakBytes(const c10::Device& device) {
#if LVS_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(
        device.index() < 0 ? 0 : device.index());
    return stats.allocated_bytes[0].peak;  // StatType::AGGREGATE.
  }
#endif
  return 0;
}

int64_t CudaAllocatedBytes(const c10::Device& device) {
#if LVS_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(
        device.index() < 0 ? 0 : device.index());
    return stats.allocated_bytes[0].current;
  }
#endif
  return 0;
}

}  // namespace lvs::pipeline
