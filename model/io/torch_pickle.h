// torch.save zip archives read through the whitelisting pickle VM
// (torch-free): the tensor layout of a state dict and the fields of a
// pickled argparse.Namespace / types.SimpleNamespace.
//
// An archive holds `<prefix>data.pkl` (the pickle) and one entry
// `<prefix>data/<key>` per storage. Parsing validates every tensor against
// its storage: storage entry present, entry size = numel x element size,
// tensor dtype = storage dtype, and offset + sum((size-1) x stride) inside
// the storage, all without overflow. Torch tensors are built from these
// specs by LoadTorchCheckpoint (model/io/checkpoint.h).
//
// Thread-safety: free functions; results are immutable values.
#ifndef LVS_MODEL_IO_TORCH_PICKLE_H_
#define LVS_MODEL_IO_TORCH_PICKLE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/io/dtype.h"
#include "model/io/pickle.h"
#include "model/io/zip.h"
#include "nlohmann/json.hpp"

namespace lvs::io {

// One storage of an archive (shared by every tensor that views it).
struct StorageSpec {
  std::string key;
  DType dtype = DType::kF32;
  int64_t numel = 0;
  // The device it was saved from ("cpu", "cuda:0"); lvs loads to CPU.
  std::string location;
  // The archive entry holding its bytes.
  const ZipEntry* entry = nullptr;
};

// One tensor: a strided view of a storage.
struct TensorSpec {
  // Dotted path in the pickled dicts ("layers.0.attention.wq.weight").
  std::string name;
  std::string storage_key;
  DType dtype = DType::kF32;
  int64_t storage_offset = 0;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
};

// A parsed torch.save archive.
struct TorchArchive {
  std::shared_ptr<const ZipArchive> zip;
  // The record prefix, e.g. "consolidated.00-of-01/".
  std::string prefix;
  std::map<std::string, StorageSpec> storages;
  // Tensors in pickle order; names are unique.
  std::vector<TensorSpec> tensors;
};

// Finds `<prefix>data.pkl` in `zip` (exactly one), checks its CRC and runs
// it through the VM. Sets `*prefix` when non-null.
absl::StatusOr<PickleResult> ReadArchivePickle(const ZipArchive& zip,
                                               std::string* prefix);

// Collects the tensors of a pickled state dict `root` (a dict; nested
// dicts give dotted names; entries whose key is not a str and values that
// are neither tensors nor dicts are skipped) and validates them against
// the archive's storage entries.
absl::StatusOr<TorchArchive> ParseTorchArchive(
    std::shared_ptr<const ZipArchive> zip);

// Opens `path` and parses it with ParseTorchArchive.
absl::StatusOr<TorchArchive> OpenTorchArchive(const std::string& path);

// Converts a pickled namespace (argparse.Namespace, types.SimpleNamespace)
// or dict of plain values into a JSON object: None -> null, bool, int,
// float, str, tuple/list/set -> array, dict with str keys -> object. Other
// values (tensors, bytes) are errors naming the field and `source`.
absl::StatusOr<nlohmann::json> PickledArgsToJson(const PyValue& root,
                                                 const std::string& source);

// Reads a `model_args.pth` (torch.save of an argparse.Namespace or
// types.SimpleNamespace) into a JSON object of its fields.
absl::StatusOr<nlohmann::json> ReadPickledArgs(const std::string& path);

}  // namespace lvs::io

#endif  // LVS_MODEL_IO_TORCH_PICKLE_H_
