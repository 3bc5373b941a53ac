// Real-process helpers for the serving integration tests: start a binary with
// its output in a log file, signal it, wait for it with a bound, pick free
// loopback ports and wait for a port to accept connections.
//
// Every child gets PR_SET_PDEATHSIG(SIGKILL), so a crashed or timed-out test
// never leaves processes behind; the destructor of `Subprocess` kills and
// reaps a child that is still running.
//
// Thread-safety: a `Subprocess` is used by one thread.
#ifndef LVS_TESTS_WORKER_SUBPROCESS_H_
#define LVS_TESTS_WORKER_SUBPROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace lvs::testing {

// One child process.
class Subprocess {
 public:
  // Starts `argv[0]` with `argv`, stdout and stderr appended to `log_path`.
  static absl::StatusOr<Subprocess> Start(const std::vector<std::string>& argv,
                                          const std::string& log_path);

  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  // Kills (SIGKILL) and reaps the child if it still runs.
  ~Subprocess();

  // Sends `signal` to the child.
  void Signal(int signal) const;

  // Waits up to `timeout` for the child to exit; returns its wait status, or
  // nullopt on timeout.
  std::optional<int> Wait(absl::Duration timeout);

  // Returns whether the child has not exited yet (reaping it if it has).
  bool Running();

  // Returns the child's pid (0 when moved from).
  pid_t pid() const { return pid_; }

  // Returns the log file path.
  const std::string& log_path() const { return log_path_; }

 private:
  Subprocess(pid_t pid, std::string log_path)
      : pid_(pid), log_path_(std::move(log_path)) {}

  // Sends SIGKILL to a running child and reaps it.
  void KillAndReap();

  pid_t pid_ = 0;
  std::optional<int> exit_status_;
  std::string log_path_;
};

// Returns a TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// Waits up to `timeout` for 127.0.0.1:`port` to accept a connection.
bool WaitForPort(int port, absl::Duration timeout);

// Returns the contents of `path` ("" if unreadable).
std::string ReadFile(const std::string& path);

// Runs `argv` to completion (bounded by `timeout`, then SIGKILL); returns the
// wait status and fills `output` with stdout and stderr together.
absl::StatusOr<int> RunCommand(const std::vector<std::string>& argv,
                               absl::Duration timeout, std::string* output);

}  // namespace lvs::testing

#endif  // LVS_TESTS_WORKER_SUBPROCESS_H_
