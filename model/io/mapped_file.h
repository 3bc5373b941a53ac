// Read-only views of checkpoint bytes: a memory-mapped file or an owned
// buffer (torch-free).
//
// Thread-safety: immutable after creation; share freely across threads.
#ifndef LVS_MODEL_IO_MAPPED_FILE_H_
#define LVS_MODEL_IO_MAPPED_FILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lvs::io {

// A contiguous range of bytes that stays valid while the object lives.
// Tensors that point into it hold a shared_ptr to keep it alive.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual const uint8_t* data() const = 0;
  virtual size_t size() const = 0;
  // The file the bytes came from (or a label for in-memory buffers).
  virtual const std::string& path() const = 0;
};

// Maps `path` privately (copy-on-write, so tensors built on it may be
// written without touching the file). Errors name the file.
absl::StatusOr<std::shared_ptr<const ByteSource>> MapFile(
    const std::string& path);

// Wraps an owned buffer; `label` is used in error messages.
std::shared_ptr<const ByteSource> OwnedBytes(std::vector<uint8_t> bytes,
                                             std::string label);

}  // namespace lvs::io

#endif  // LVS_MODEL_IO_MAPPED_FILE_H_
