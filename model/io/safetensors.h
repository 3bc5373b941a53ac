// Reader and writer for the safetensors format (torch-free).
//
// The reader validates the whole header before exposing any tensor: header
// length limit, JSON shape, known dtypes, shape x dtype = byte length without
// overflow, offsets inside the data section, ranges contiguous and
// non-overlapping and covering the data section. Tensor records point into
// the file's bytes (zero-copy); they stay valid while `source()` lives.
//
// Thread-safety: a SafetensorsFile is immutable after Open(); share freely.
#ifndef LVS_MODEL_IO_SAFETENSORS_H_
#define LVS_MODEL_IO_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/io/dtype.h"
#include "model/io/mapped_file.h"

namespace lvs::io {

// Largest header accepted, as the reference implementation limits it.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100 * 1000 * 1000;

// One tensor of a checkpoint: metadata plus a pointer to its bytes.
struct TensorRecord {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // Not owned; see SafetensorsFile::source().
  size_t nbytes = 0;

  // Number of elements (product of shape; 1 for a scalar).
  int64_t numel() const;
};

// A parsed safetensors file.
class SafetensorsFile {
 public:
  // Maps and validates `path`. Errors name the file and the problem.
  static absl::StatusOr<std::shared_ptr<const SafetensorsFile>> Open(
      const std::string& path);

  // Validates bytes already in memory (used by the fuzzer and tests).
  static absl::StatusOr<std::shared_ptr<const SafetensorsFile>> Parse(
      std::shared_ptr<const ByteSource> source);

  // Tensors in file order (ascending data offset).
  const std::vector<TensorRecord>& tensors() const { return tensors_; }

  // Returns the tensor named `name`, or nullptr.
  const TensorRecord* Find(absl::string_view name) const;

  // The `__metadata__` string map (empty when absent).
  const std::map<std::string, std::string>& metadata() const {
    return metadata_;
  }

  // The bytes the records point into.
  const std::shared_ptr<const ByteSource>& source() const { return source_; }
  const std::string& path() const { return source_->path(); }

 private:
  SafetensorsFile() = default;

  std::shared_ptr<const ByteSource> source_;
  std::vector<TensorRecord> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// A tensor to write: the bytes must be contiguous, row-major, little-endian.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
};

// Serialises `tensors` (in the given order) and `metadata` into safetensors
// bytes. Fails on duplicate names or a byte count that does not match the
// shape.
absl::StatusOr<std::vector<uint8_t>> SerializeSafetensors(
    const std::vector<TensorToWrite>& tensors,
    const std::map<std::string, std::string>& metadata = {});

// Writes the file atomically: a temporary file beside `path`, fsync, rename.
absl::Status WriteSafetensors(
    const std::string& path, const std::vector<TensorToWrite>& tensors,
    const std::map<std::string, std::string>& metadata = {});

// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
absl::Status WriteFileAtomically(const std::string& path, const void* bytes,
                                 size_t size);

}  // namespace lvs::io

#endif  // LVS_MODEL_IO_SAFETENSORS_H_
