// Element types of checkpoint tensors, named as the safetensors format names
// them (torch-free).
//
// Thread-safety: pure functions; safe everywhere.
#ifndef LVS_MODEL_IO_DTYPE_H_
#define LVS_MODEL_IO_DTYPE_H_

#include <cstddef>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace lvs::io {

// The element types lvs reads and writes.
enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

// Returns the dtype named `name` ("F32", "BF16", ...), or InvalidArgument.
absl::StatusOr<DType> ParseDType(absl::string_view name);

// Returns the safetensors name of `dtype` ("F32", ...).
absl::string_view DTypeName(DType dtype);

// Returns the size of one element in bytes.
size_t DTypeSize(DType dtype);

}  // namespace lvs::io

#endif  // LVS_MODEL_IO_DTYPE_H_
