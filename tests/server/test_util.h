// Helpers shared by the server tests: a fresh temporary data directory.
#ifndef LVS_TESTS_SERVER_TEST_UTIL_H_
#define LVS_TESTS_SERVER_TEST_UTIL_H_

#include <stdlib.h>

#include <filesystem>
#include <string>

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

}  // namespace lvs::server::testing

#endif  // LVS_TESTS_SERVER_TEST_UTIL_H_
