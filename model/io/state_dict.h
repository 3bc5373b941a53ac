// Strict binding of checkpoint tensors to a torch::nn::Module's parameters
// and buffers.
//
// Thread-safety: LoadStateDict mutates `module`; callers serialise access to
// it. The helpers are pure.
#ifndef LVS_MODEL_IO_STATE_DICT_H_
#define LVS_MODEL_IO_STATE_DICT_H_

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "model/io/torch_tensors.h"

namespace lvs::io {

// Returns `key` with wrapper segments removed: `_orig_mod.` (torch.compile),
// `module.` (DataParallel/DDP), `_checkpoint_wrapped_module.` and
// `_fsdp_wrapped_module.`.
std::string CanonicalKey(absl::string_view key);

// Returns `tensors` with every key canonicalised; fails if two keys collapse
// to the same name.
absl::StatusOr<TensorMap> CanonicalizeKeys(const TensorMap& tensors,
                                           const std::string& source);

// How LoadStateDict maps checkpoint names to module names and converts.
struct StateDictOptions {
  // A prefix every checkpoint key carries and the module does not ("model.").
  std::string strip_prefix;
  // Checkpoint keys starting with one of these are allowed to have no
  // module counterpart (for example layers a truncated model skips).
  std::vector<std::string> ignored_prefixes;
  // Target dtype for floating-point tensors (nullopt keeps the module's).
  std::optional<torch::ScalarType> dtype;
  // Target device.
  torch::Device device = torch::kCPU;
};

// Copies every checkpoint tensor into the module parameter or buffer of the
// same (canonical) name, converting dtype and device. Strict: the error lists
// every missing, unexpected and mis-shaped tensor, naming `source` (the file
// or directory), not just the first. On error the module is unchanged.
absl::Status LoadStateDict(torch::nn::Module& module, const TensorMap& tensors,
                           const StateDictOptions& options,
                           const std::string& source);

}  // namespace lvs::io

#endif  // LVS_MODEL_IO_STATE_DICT_H_
