// Writes `model_args.pth` the way the reference's train.py does
// (`torch.save(args)`): a torch.save zip archive whose `archive/data.pkl`
// pickles a `types.SimpleNamespace` of plain values, so the DiT loader
// (io::ReadPickledArgs + dit::DiTConfigFromArgs) and Python's torch.load both
// read it.
//
// Torch-free. Thread-safety: pure functions.
#ifndef LVS_TRAINER_MODEL_ARGS_WRITER_H_
#define LVS_TRAINER_MODEL_ARGS_WRITER_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace lvs::trainer {

// Returns a protocol-2 pickle of a types.SimpleNamespace with the fields of
// `args` (a JSON object; null, bool, integer, float, string and arrays of
// those; arrays become tuples as argparse's nargs fields are lists). Other
// values are INVALID_ARGUMENT naming the field.
absl::StatusOr<std::string> PickleNamespace(const nlohmann::json& args);

// Returns a zip archive (STORED entries) holding `archive/data.pkl` =
// `pickle` and `archive/version` = "3", the layout of torch.save.
std::string TorchSaveArchive(const std::string& pickle);

// Writes `args` to `path` as a torch.save archive, atomically.
absl::Status WriteModelArgs(const std::string& path,
                            const nlohmann::json& args);

}  // namespace lvs::trainer

#endif  // LVS_TRAINER_MODEL_ARGS_WRITER_H_
