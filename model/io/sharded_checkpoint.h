// Sharded Hugging Face safetensors checkpoints: `*.safetensors.index.json`
// (`weight_map` tensor name -> shard file) plus the shard files.
//
// Everything here is torch-free; `LoadShardedSafetensors` in
// model/io/checkpoint.h turns the shards into one io::TensorMap.
//
// Validation: the index is a JSON object whose `weight_map` maps every tensor
// name to a plain file name (no directories) in the index's directory; no
// name appears twice; every shard named exists; each shard holds exactly the
// tensors mapped to it (so every key is in exactly one shard).
//
// Thread-safety: free functions over immutable results; safe concurrently.
#ifndef LVS_MODEL_IO_SHARDED_CHECKPOINT_H_
#define LVS_MODEL_IO_SHARDED_CHECKPOINT_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/io/safetensors.h"

namespace lvs::io {

// The file name Hugging Face gives the index of a sharded checkpoint.
inline constexpr absl::string_view kShardIndexName =
    "model.safetensors.index.json";

// A parsed shard index.
struct ShardIndex {
  // The index file.
  std::string index_path;
  // The directory the shard names are relative to.
  std::string dir;
  // Tensor name -> shard file name (relative to `dir`).
  std::map<std::string, std::string> weight_map;
  // The distinct shard file names, sorted.
  std::vector<std::string> shards;
};

// Parses and validates index JSON `text` read from `index_path` (shard
// existence is not checked). Errors name `index_path` and the rule broken.
absl::StatusOr<ShardIndex> ParseShardIndexText(absl::string_view text,
                                               const std::string& index_path);

// Reads `index_path`, validates it with ParseShardIndexText and checks that
// every shard it names exists as a regular file.
absl::StatusOr<ShardIndex> ParseShardIndex(const std::string& index_path);

// Returns the index file for `dir_or_index_path`: the path itself when it
// is a file, else `dir/model.safetensors.index.json`, else the single
// `*.safetensors.index.json` inside the directory.
absl::StatusOr<std::string> FindShardIndex(
    const std::string& dir_or_index_path);

// Opens every shard of `index` and checks that each holds exactly the
// tensors the index maps to it. Returns the shards in `index.shards` order.
absl::StatusOr<std::vector<std::shared_ptr<const SafetensorsFile>>> OpenShards(
    const ShardIndex& index);

}  // namespace lvs::io

#endif  // LVS_MODEL_IO_SHARDED_CHECKPOINT_H_
