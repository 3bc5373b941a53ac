#include "model/io/torch_tensors.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace lvs::io {

torch::ScalarType ToScalarType(DType dtype) {
  switch (dtype) {
    case DType::kF64:
      return torch::kFloat64;
    case DType::kF32:
      return torch::kFloat32;
    case DType::kF16:
      return torch::kFloat16;
    case DType::kBF16:
      return torch::kBFloat16;
    case DType::kI64:
      return torch::kInt64;
    case DType::kI32:
      return torch::kInt32;
    case DType::kI16:
      return torch::kInt16;
    case DType::kI8:
      return torch::kInt8;
    case DType::kU8:
      return torch::kUInt8;
    case DType::kBool:
      return torch::kBool;
  }
  return torch::kFloat32;
}

absl::StatusOr<DType> FromScalarType(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat64:
      return DType::kF64;
    case torch::kFloat32:
      return DType::kF32;
    case torch::kFloat16:
      return DType::kF16;
    case torch::kBFloat16:
      return DType::kBF16;
    case torch::kInt64:
      return DType::kI64;
    case torch::kInt32:
      return DType::kI32;
    case torch::kInt16:
      return DType::kI16;
    case torch::kInt8:
      return DType::kI8;
    case torch::kUInt8:
      return DType::kU8;
    case torch::kBool:
      return DType::kBool;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "dtype ", c10::toString(type), " has no safetensors name"));
  }
}

torch::Tensor RecordToTensor(const TensorRecord& rec,
                             std::shared_ptr<const ByteSource> keep_alive) {
  auto options = torch::TensorOptions().dtype(ToScalarType(rec.dtype));
  if (rec.nbytes == 0) return torch::empty(rec.shape, options);
  // The mapping is private (copy-on-write), so writes never reach the file.
  void* data = const_cast<uint8_t*>(rec.data);
  auto holder = std::make_shared<std::shared_ptr<const ByteSource>>(
      std::move(keep_alive));
  return torch::from_blob(
      data, rec.shape, [holder](void*) mutable { holder.reset(); }, options);
}

absl::StatusOr<TensorMap> LoadSafetensors(const std::string& path) {
  LVS_ASSIGN_OR_RETURN(std::shared_ptr<const SafetensorsFile> file,
                       SafetensorsFile::Open(path));
  TensorMap out;
  for (const TensorRecord& rec : file->tensors()) {
    out.emplace(rec.name, RecordToTensor(rec, file->source()));
  }
  return out;
}

absl::Status SaveSafetensors(
    const std::string& path, const TensorMap& tensors,
    const std::map<std::string, std::string>& metadata) {
  std::vector<torch::Tensor> keep;
  std::vector<TensorToWrite> records;
  keep.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    LVS_ASSIGN_OR_RETURN(DType dtype, FromScalarType(tensor.scalar_type()));
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    keep.push_back(t);
    TensorToWrite w;
    w.name = name;
    w.dtype = dtype;
    w.shape.assign(t.sizes().begin(), t.sizes().end());
    w.data = t.data_ptr();
    w.nbytes = static_cast<size_t>(t.numel()) * t.element_size();
    records.push_back(std::move(w));
  }
  return WriteSafetensors(path, records, metadata);
}

}  // namespace lvs::io
