#include "model/sampler/checkpoint_defaults.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace lvs::sampler {

absl::StatusOr<std::optional<SampleConfig>> CheckpointSampleConfig(
    const std::string& dit_dir) {
  const std::string path =
      absl::StrCat(dit_dir, "/", kCheckpointSampleConfigFile);
  std::ifstream in(path);
  if (!in) return std::optional<SampleConfig>();
  const nlohmann::json json = nlohmann::json::parse(in, nullptr, false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not JSON"));
  }
  absl::StatusOr<SampleConfig> config = SampleConfigFromJson(json, path);
  if (!config.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", config.status().message()));
  }
  return std::optional<SampleConfig>(*std::move(config));
}

}  // namespace lvs::sampler
