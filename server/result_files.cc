#include "server/result_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace lvs::server {
namespace {

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::InternalError(
      absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

absl::Status ResultFiles::Init() {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create results directory ",
                                            dir_, ": ", ec.message()));
  }
  return absl::OkStatus();
}

std::string ResultFiles::Path(const std::string& id) const {
  return absl::StrCat(dir_, "/", id, ".mp4");
}

int64_t ResultFiles::Size(const std::string& id) const {
  struct stat st;
  if (::stat(Path(id).c_str(), &st) != 0) return 0;
  return st.st_size;
}

absl::Status ResultFiles::Append(const std::string& id, int64_t offset,
                                 const std::string& data) {
  const std::string path = Path(id);
  int64_t size = Size(id);
  if (offset != size) {
    return absl::OutOfRangeError(
        absl::StrCat("chunk offset ", offset, " of ", path,
                     " is not contiguous: the file has ", size, " bytes"));
  }
  int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot open", path);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status s = Errno("cannot write", path);
      ::close(fd);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return absl::OkStatus();
}

absl::Status ResultFiles::Sync(const std::string& id) {
  const std::string path = Path(id);
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? absl::OkStatus() : Errno("cannot open", path);
  absl::Status s;
  if (::fdatasync(fd) != 0) s = Errno("cannot sync", path);
  ::close(fd);
  return s;
}

absl::StatusOr<std::string> ResultFiles::Read(const std::string& id,
                                              int64_t offset,
                                              int64_t length) const {
  const std::string path = Path(id);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open", path);
  std::string out(static_cast<size_t>(length), '\0');
  int64_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd, out.data() + done, length - done, offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status s = Errno("cannot read", path);
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    done += n;
  }
  ::close(fd);
  out.resize(static_cast<size_t>(done));
  return out;
}

void ResultFiles::Remove(const std::string& id) { ::unlink(Path(id).c_str()); }

int64_t ResultFiles::TotalBytes() const {
  int64_t total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    if (entry.is_regular_file(ec)) total += entry.file_size(ec);
  }
  return total;
}

}  // namespace lvs::server
