// The `lvs-model conform` registry: each model component registers the
// golden vector files it can reproduce.
//
// A runner receives one vector file (`DIR/vectors/<name>.safetensors`) with
// its JSON sidecar and returns the tensors it computed, named as in the golden
// file. The driver checks that every expected output is present with the
// golden shape, converts to the golden dtype (F32 / I64 / U8) and writes
// `OUT/<name>.safetensors`. Nothing about a golden set is hard-coded: runners
// read checkpoints from `DIR/{dit,text_encoder,vae}` and every parameter
// (texts, configs, shapes, step counts) from the sidecar.
//
// Thread-safety: registration happens during static initialisation; running
// is single-threaded.
#ifndef LVS_TOOLS_LVS_MODEL_CONFORM_H_
#define LVS_TOOLS_LVS_MODEL_CONFORM_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/io/torch_tensors.h"
#include "nlohmann/json.hpp"

namespace lvs::conform {

// One vector file to reproduce.
struct ConformCase {
  std::string golden_dir;  // The golden root (holds dit/, vectors/, ...).
  std::string name;        // File stem, e.g. "text_encoder_bf16".
  nlohmann::json sidecar;  // Parsed `<name>.json`.
  io::TensorMap golden;    // Every tensor of `<name>.safetensors`.
  bool bf16 = false;       // True for `*_bf16` files.
  // Where the models run (`--device cpu|cuda[:N]`); runners move inputs here
  // and results back to the CPU.
  torch::Device device = torch::kCPU;

  // Returns golden tensor `key` or a NotFound error naming the file.
  absl::StatusOr<torch::Tensor> Input(const std::string& key) const;
};

// Computes the outputs of one vector file.
using ConformFn =
    std::function<absl::StatusOr<io::TensorMap>(const ConformCase&)>;

// Registers `fn` for the vector file stem `name`. Returns true (so it can
// initialise a static).
bool RegisterConform(const std::string& name, ConformFn fn);

// Returns the registered stems in name order.
std::vector<std::string> RegisteredConformNames();

// True when a golden tensor name is an input (never written to the output).
bool IsInputTensor(const std::string& name);

// True when a golden tensor name is an optional trace tensor.
bool IsTraceTensor(const std::string& stem, const std::string& name);

// Options of one conformance run.
struct ConformOptions {
  std::string golden_dir;
  std::string out_dir;
  std::vector<std::string> only;  // Empty: every registered file present.
  bool check = false;             // Compare with the golden tolerances.
  torch::Device device = torch::kCPU;
};

// Runs every selected vector file; prints one line per file. Returns an
// error if a runner fails or (with `check`) a comparison fails.
absl::Status RunConform(const ConformOptions& options);

}  // namespace lvs::conform

// Registers a runner at static-initialisation time.
#define LVS_REGISTER_CONFORM(name, fn)                               \
  static const bool LVS_CONCAT_(lvs_conform_registered_, __LINE__) = \
      ::lvs::conform::RegisterConform(name, fn)

#include "common/status_macros.h"  // LVS_CONCAT_

#endif  // LVS_TOOLS_LVS_MODEL_CONFORM_H_
