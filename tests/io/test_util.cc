#include "tests/io/test_util.h"

#include <stdlib.h>

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "model/io/zip.h"

namespace lvs::io::testing {

std::string MakeTempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl =
      std::string(base != nullptr ? base : "/tmp") + "/lvs_io_test_XXXXXX";
  char* made = mkdtemp(tmpl.data());
  EXPECT_NE(made, nullptr) << "mkdtemp " << tmpl;
  return tmpl;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

void PutLe(std::string* out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

}  // namespace

std::string MakeZip(const std::vector<ZipFile>& files) {
  std::string out, central;
  for (const ZipFile& f : files) {
    const uint32_t crc =
        Crc32(reinterpret_cast<const uint8_t*>(f.data.data()), f.data.size());
    const uint64_t offset = out.size();
    PutLe(&out, 0x04034b50, 4);
    PutLe(&out, 20, 2);  // version needed
    PutLe(&out, 0, 2);   // flags
    PutLe(&out, 0, 2);   // STORED
    PutLe(&out, 0, 4);   // time, date
    PutLe(&out, crc, 4);
    PutLe(&out, f.data.size(), 4);
    PutLe(&out, f.data.size(), 4);
    PutLe(&out, f.name.size(), 2);
    PutLe(&out, 0, 2);
    out += f.name;
    out += f.data;
    PutLe(&central, 0x02014b50, 4);
    PutLe(&central, 20, 2);
    PutLe(&central, 20, 2);
    PutLe(&central, 0, 2);
    PutLe(&central, 0, 2);
    PutLe(&central, 0, 4);
    PutLe(&central, crc, 4);
    PutLe(&central, f.data.size(), 4);
    PutLe(&central, f.data.size(), 4);
    PutLe(&central, f.name.size(), 2);
    PutLe(&central, 0, 2);  // extra
    PutLe(&central, 0, 2);  // comment
    PutLe(&central, 0, 2);  // disk
    PutLe(&central, 0, 2);  // internal attributes
    PutLe(&central, 0, 4);  // external attributes
    PutLe(&central, offset, 4);
    central += f.name;
  }
  const uint64_t cd_offset = out.size();
  out += central;
  PutLe(&out, 0x06054b50, 4);
  PutLe(&out, 0, 4);
  PutLe(&out, files.size(), 2);
  PutLe(&out, files.size(), 2);
  PutLe(&out, central.size(), 4);
  PutLe(&out, cd_offset, 4);
  PutLe(&out, 0, 2);
  return out;
}

std::string MakeTorchZip(const std::string& pickle,
                         const std::vector<ZipFile>& storages) {
  std::vector<ZipFile> files = {{"archive/data.pkl", pickle}};
  for (const ZipFile& s : storages) {
    files.push_back({"archive/data/" + s.name, s.data});
  }
  files.push_back({"archive/version", "3\n"});
  return MakeZip(files);
}

std::string GoldenDir() { return LVS_GOLDEN_DIR; }

}  // namespace lvs::io::testing
