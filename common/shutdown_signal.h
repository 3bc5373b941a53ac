// Delivery of SIGTERM / SIGINT to one waiting thread, for long-running
// processes (worker, trainer) that drain instead of dying.
//
// Blocking the signals with pthread_sigmask and calling sigwait is not enough
// in a process that links LibTorch: OpenBLAS and OpenMP start their threads
// before main(), those threads keep the default disposition, and a SIGTERM
// delivered to one of them kills the process. This installs a process-wide
// handler instead; the handler only writes to a pipe (async-signal-safe).
//
// Thread-safety: Install() once from main() before starting other work;
// Wait() may be called from any one thread.
#ifndef LVS_COMMON_SHUTDOWN_SIGNAL_H_
#define LVS_COMMON_SHUTDOWN_SIGNAL_H_

#include "absl/status/status.h"

namespace lvs::common {

// Installs handlers for SIGTERM and SIGINT. Fails if the pipe or the
// handlers cannot be set up.
absl::Status InstallShutdownSignalHandlers();

// Blocks until SIGTERM or SIGINT arrives; returns the signal number.
// REQUIRES: InstallShutdownSignalHandlers() succeeded.
int WaitForShutdownSignal();

}  // namespace lvs::common

#endif  // LVS_COMMON_SHUTDOWN_SIGNAL_H_
