// Helpers shared by the server tests: a fresh temporary data directory, and
// waiting for the outcome of an asynchronous job store call.
#ifndef LVS_TESTS_SERVER_TEST_UTIL_H_
#define LVS_TESTS_SERVER_TEST_UTIL_H_

#include <stdlib.h>

#include <filesystem>
#include <future>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lvs::server::testing {

// A directory under $TMPDIR removed when the object goes away.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base ? base : "/tmp") + "/lvs-test-XXXXXX";
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Calls `start` with a callback taking an absl::StatusOr<T> (a JobStore
// *Async method's `done`) and waits for it to run.
template <typename T, typename Start>
absl::StatusOr<T> Await(Start start) {
  std::promise<absl::StatusOr<T>> outcome;
  start([&outcome](absl::StatusOr<T> v) { outcome.set_value(std::move(v)); });
  return outcome.get_future().get();
}

// The same for a callback taking an absl::Status.
template <typename Start>
absl::Status AwaitStatus(Start start) {
  std::promise<absl::Status> outcome;
  start([&outcome](absl::Status s) { outcome.set_value(std::move(s)); });
  return outcome.get_future().get();
}

}  // namespace lvs::server::testing

#endif  // LVS_TESTS_SERVER_TEST_UTIL_H_
