// Lets bench/cpu/profile sample only the measured part of a benchmark: when
// LVS_PERF_CTL names perf's control FIFO (perf record --control=fifo:PATH
// -D -1), PerfEnable() and PerfDisable() switch sampling on and off around
// the timed call; without the variable they do nothing.
//
// Thread-safety: call from the benchmark's thread only.
#ifndef LVS_BENCH_CPU_PERF_CONTROL_H_
#define LVS_BENCH_CPU_PERF_CONTROL_H_

#include <cstdlib>
#include <fstream>

namespace lvs::bench {

inline void PerfCommand(const char* command) {
  const char* path = std::getenv("LVS_PERF_CTL");
  if (path == nullptr || *path == '\0') return;
  std::ofstream(path) << command << "\n" << std::flush;
}

inline void PerfEnable() { PerfCommand("enable"); }
inline void PerfDisable() { PerfCommand("disable"); }

}  // namespace lvs::bench

#endif  // LVS_BENCH_CPU_PERF_CONTROL_H_
