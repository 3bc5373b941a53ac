// One entry point for every checkpoint layout lvs reads: a safetensors
// file, a sharded Hugging Face checkpoint (index JSON or a directory holding
// one), or a torch.save zip archive (`.pth`, `.pt`, `.bin`, read with the
// whitelisting unpickler, never executing code).
//
// Thread-safety: free functions; safe to call concurrently.
#ifndef LVS_MODEL_IO_CHECKPOINT_H_
#define LVS_MODEL_IO_CHECKPOINT_H_

#include <string>

#include "absl/status/statusor.h"
#include "model/io/torch_tensors.h"

namespace lvs::io {

// Loads every tensor of a sharded safetensors checkpoint (zero-copy, CPU).
// `dir_or_index_path` is the index JSON or a directory holding
// `model.safetensors.index.json` (or a single `*.safetensors.index.json`).
// The index is validated strictly (see sharded_checkpoint.h).
absl::StatusOr<TensorMap> LoadShardedSafetensors(
    const std::string& dir_or_index_path);

// Loads every tensor of a torch.save zip archive (`.pth`, `.pt`, `.bin`)
// through the whitelisting unpickler (torch_pickle.h). Each tensor is a view
// (size, stride, storage offset as saved) of its storage; tensors that share
// a storage share memory. Storages are zero-copy views of the mapped file
// when their bytes are aligned to the element size, else aligned copies.
absl::StatusOr<TensorMap> LoadTorchCheckpoint(const std::string& path);

// Loads every tensor of the checkpoint at `path`, dispatching on its form:
// `*.safetensors`; `*.pth`, `*.pt`, `*.bin` (torch.save zip archive);
// `*.json` (a shard index); a directory holding a shard index or exactly one
// `*.safetensors` file. Keys are returned as stored (LoadStateDict strips
// `_orig_mod.`/`module.`). Errors name the path and the problem.
absl::StatusOr<TensorMap> LoadCheckpoint(const std::string& path);

}  // namespace lvs::io

#endif  // LVS_MODEL_IO_CHECKPOINT_H_
