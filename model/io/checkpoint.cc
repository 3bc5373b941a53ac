#include "model/io/checkpoint.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "model/io/sharded_checkpoint.h"
#include "model/io/torch_pickle.h"

namespace lvs::io {
namespace {

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Returns the names in `dir` that end with `suffix`.
std::vector<std::string> ListWithSuffix(const std::string& dir,
                                        absl::string_view suffix) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (absl::EndsWith(e->d_name, suffix)) out.push_back(e->d_name);
    }
    closedir(d);
  }
  return out;
}

absl::StatusOr<TensorMap> LoadDirectory(const std::string& dir) {
  if (!ListWithSuffix(dir, ".safetensors.index.json").empty()) {
    return LoadShardedSafetensors(dir);
  }
  std::vector<std::string> files = ListWithSuffix(dir, ".safetensors");
  if (files.size() == 1)
    return LoadSafetensors(absl::StrCat(dir, "/", files[0]));
  return absl::NotFoundError(absl::StrCat(
      dir,
      ": expected a *.safetensors.index.json or exactly one "
      "*.safetensors file, found ",
      files.size(), " safetensors files",
      files.empty() ? ""
                    : absl::StrCat(" (", absl::StrJoin(files, ", "), ")")));
}

// Returns the storage as a 1-D tensor of its dtype.
torch::Tensor StorageTensor(const TorchArchive& archive,
                            const StorageSpec& spec) {
  auto options = torch::TensorOptions().dtype(ToScalarType(spec.dtype));
  if (spec.numel == 0) return torch::empty({0}, options);
  const uint8_t* bytes = archive.zip->data(*spec.entry);
  if (reinterpret_cast<uintptr_t>(bytes) % DTypeSize(spec.dtype) != 0) {
    torch::Tensor copy = torch::empty({spec.numel}, options);
    std::memcpy(copy.data_ptr(), bytes, spec.entry->size);
    return copy;
  }
  // The mapping is private (copy-on-write), so writes never reach the file.
  auto holder = std::make_shared<std::shared_ptr<const ByteSource>>(
      archive.zip->source());
  return torch::from_blob(
      const_cast<uint8_t*>(bytes), {spec.numel},
      [holder](void*) mutable { holder.reset(); }, options);
}

}  // namespace

absl::StatusOr<TensorMap> LoadTorchCheckpoint(const std::string& path) {
  LVS_ASSIGN_OR_RETURN(TorchArchive archive, OpenTorchArchive(path));
  std::map<std::string, torch::Tensor> storages;
  for (const auto& [key, spec] : archive.storages) {
    storages.emplace(key, StorageTensor(archive, spec));
  }
  TensorMap out;
  for (const TensorSpec& t : archive.tensors) {
    out.emplace(t.name, storages.at(t.storage_key)
                            .as_strided(t.sizes, t.strides, t.storage_offset));
  }
  return out;
}

absl::StatusOr<TensorMap> LoadShardedSafetensors(
    const std::string& dir_or_index_path) {
  LVS_ASSIGN_OR_RETURN(std::string index_path,
                       FindShardIndex(dir_or_index_path));
  LVS_ASSIGN_OR_RETURN(ShardIndex index, ParseShardIndex(index_path));
  LVS_ASSIGN_OR_RETURN(
      std::vector<std::shared_ptr<const SafetensorsFile>> files,
      OpenShards(index));
  TensorMap out;
  for (const auto& file : files) {
    for (const TensorRecord& rec : file->tensors()) {
      out.emplace(rec.name, RecordToTensor(rec, file->source()));
    }
  }
  return out;
}

absl::StatusOr<TensorMap> LoadCheckpoint(const std::string& path) {
  if (IsDirectory(path)) return LoadDirectory(path);
  if (absl::EndsWith(path, ".safetensors")) return LoadSafetensors(path);
  if (absl::EndsWith(path, ".json")) return LoadShardedSafetensors(path);
  if (absl::EndsWith(path, ".pth") || absl::EndsWith(path, ".pt") ||
      absl::EndsWith(path, ".bin")) {
    return LoadTorchCheckpoint(path);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      path,
      ": unknown checkpoint form (expected .safetensors, .pth, .pt, "
      ".bin, a shard index .json or a directory)"));
}

}  // namespace lvs::io
