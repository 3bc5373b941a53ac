#include "common/shutdown_signal.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace lvs::common {
namespace {

int g_pipe[2] = {-1, -1};

void OnSignal(int sig) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(sig);
  // A full pipe means a signal is already pending: dropping this one is fine.
  [[maybe_unused]] ssize_t n = write(g_pipe[1], &byte, 1);
  errno = saved;
}

}  // namespace

absl::Status InstallShutdownSignalHandlers() {
  if (g_pipe[0] < 0 && pipe2(g_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(
        absl::StrCat("shutdown signal pipe: ", std::strerror(errno)));
  }
  fcntl(g_pipe[1], F_SETFL, O_NONBLOCK);
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT}) {
    if (sigaction(sig, &action, nullptr) != 0) {
      return absl::InternalError(
          absl::StrCat("sigaction(", sig, "): ", std::strerror(errno)));
    }
  }
  return absl::OkStatus();
}

int WaitForShutdownSignal() {
  unsigned char byte = 0;
  while (true) {
    ssize_t n = read(g_pipe[0], &byte, 1);
    if (n == 1) return byte;
    if (n < 0 && errno == EINTR) continue;
    return SIGTERM;  // The pipe broke: treat it as a request to stop.
  }
}

}  // namespace lvs::common
