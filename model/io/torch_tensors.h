// Bridge from parsed checkpoint records to torch::Tensor, and back.
//
// Thread-safety: free functions; safe to call concurrently.
#ifndef LVS_MODEL_IO_TORCH_TENSORS_H_
#define LVS_MODEL_IO_TORCH_TENSORS_H_

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/io/dtype.h"
#include "model/io/safetensors.h"

namespace lvs::io {

// Tensors by name, in name order.
using TensorMap = std::map<std::string, torch::Tensor>;

// Returns the torch scalar type of `dtype`.
torch::ScalarType ToScalarType(DType dtype);

// Returns the io dtype of `type`, or InvalidArgument for types safetensors
// cannot hold.
absl::StatusOr<DType> FromScalarType(torch::ScalarType type);

// Wraps `rec` without copying; the tensor keeps `keep_alive` alive.
torch::Tensor RecordToTensor(const TensorRecord& rec,
                             std::shared_ptr<const ByteSource> keep_alive);

// Loads every tensor of a safetensors file (zero-copy, CPU).
absl::StatusOr<TensorMap> LoadSafetensors(const std::string& path);

// Writes CPU copies of `tensors` (made contiguous) to `path` atomically.
absl::Status SaveSafetensors(
    const std::string& path, const TensorMap& tensors,
    const std::map<std::string, std::string>& metadata = {});

}  // namespace lvs::io

#endif  // LVS_MODEL_IO_TORCH_TENSORS_H_
