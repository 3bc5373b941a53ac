// Helpers shared by the io tests: temporary directories and byte builders.
//
// Thread-safety: each helper is used by one test at a time.
#ifndef LVS_TESTS_IO_TEST_UTIL_H_
#define LVS_TESTS_IO_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <vector>

namespace lvs::io::testing {

// Creates a fresh directory under $TMPDIR (or /tmp) and returns its path.
std::string MakeTempDir();

// Writes `bytes` to `path`; aborts the test on failure.
void WriteFile(const std::string& path, const std::string& bytes);

// Returns the whole file as bytes.
std::string ReadFile(const std::string& path);

// One file of a hand-built zip archive.
struct ZipFile {
  std::string name;
  std::string data;
};

// Builds a STORED zip archive of `files` (correct CRCs, no zip64), as
// torch.save writes them.
std::string MakeZip(const std::vector<ZipFile>& files);

// Wraps `pickle` as `archive/data.pkl` of a torch.save-style zip, plus
// `archive/data/<key>` entries for `storages` (key, bytes).
std::string MakeTorchZip(const std::string& pickle,
                         const std::vector<ZipFile>& storages = {});

// Returns the golden directory.
std::string GoldenDir();

}  // namespace lvs::io::testing

#endif  // LVS_TESTS_IO_TEST_UTIL_H_
