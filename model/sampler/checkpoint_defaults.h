// A DiT checkpoint's own generation defaults: `<dit>/sample_config.json`
// (the JSON form of sample_config.h), which `lvs-model generate` and
// lvs-worker use when a request names no sample config.
//
// Torch-free. Thread-safety: a pure function (reads one file).
#ifndef LVS_MODEL_SAMPLER_CHECKPOINT_DEFAULTS_H_
#define LVS_MODEL_SAMPLER_CHECKPOINT_DEFAULTS_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "model/sampler/sample_config.h"

namespace lvs::sampler {

// The file name of a checkpoint's default sample config.
inline constexpr char kCheckpointSampleConfigFile[] = "sample_config.json";

// Reads `<dit_dir>/sample_config.json`: nullopt when the file is absent,
// INVALID_ARGUMENT naming the file when it is not a valid config.
absl::StatusOr<std::optional<SampleConfig>> CheckpointSampleConfig(
    const std::string& dit_dir);

}  // namespace lvs::sampler

#endif  // LVS_MODEL_SAMPLER_CHECKPOINT_DEFAULTS_H_
