#include "model/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lvs::io {
namespace {

class MappedFile : public ByteSource {
 public:
  MappedFile(std::string path, void* addr, size_t size)
      : path_(std::move(path)), addr_(addr), size_(size) {}
  ~MappedFile() override {
    if (addr_ != nullptr && size_ > 0) munmap(addr_, size_);
  }
  const uint8_t* data() const override {
    return static_cast<const uint8_t*>(addr_);
  }
  size_t size() const override { return size_; }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  void* addr_;
  size_t size_;
};

class OwnedBuffer : public ByteSource {
 public:
  OwnedBuffer(std::vector<uint8_t> bytes, std::string label)
      : bytes_(std::move(bytes)), label_(std::move(label)) {}
  const uint8_t* data() const override { return bytes_.data(); }
  size_t size() const override { return bytes_.size(); }
  const std::string& path() const override { return label_; }

 private:
  std::vector<uint8_t> bytes_;
  std::string label_;
};

absl::Status ErrnoError(const std::string& what, const std::string& path) {
  int err = errno;
  std::string msg = absl::StrCat(path, ": ", what, ": ", std::strerror(err));
  return err == ENOENT ? absl::NotFoundError(msg) : absl::InternalError(msg);
}

}  // namespace

absl::StatusOr<std::shared_ptr<const ByteSource>> MapFile(
    const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", path);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    absl::Status s = ErrnoError("cannot stat", path);
    close(fd);
    return s;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a regular file"));
  }
  size_t size = static_cast<size_t>(st.st_size);
  void* addr = nullptr;
  if (size > 0) {
    addr = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      absl::Status s = ErrnoError("cannot mmap", path);
      close(fd);
      return s;
    }
  }
  close(fd);
  return std::make_shared<MappedFile>(path, addr, size);
}

std::shared_ptr<const ByteSource> OwnedBytes(std::vector<uint8_t> bytes,
                                             std::string label) {
  return std::make_shared<OwnedBuffer>(std::move(bytes), std::move(label));
}

}  // namespace lvs::io
