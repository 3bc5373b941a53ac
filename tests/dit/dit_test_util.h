// Shared fixtures of the DiT tests: the golden tiny checkpoint and vectors.
//
// Thread-safety: test-only helpers; not thread-safe.
#ifndef LVS_TESTS_DIT_DIT_TEST_UTIL_H_
#define LVS_TESTS_DIT_DIT_TEST_UTIL_H_

#include <fstream>
#include <string>

#include "model/dit/dit.h"
#include "model/io/torch_tensors.h"
#include "nlohmann/json.hpp"

namespace lvs::dit::testing {

inline std::string GoldenDir() { return LVS_GOLDEN_DIR; }

// Reads a JSON file of the golden tree (e.g. "dit/config.json").
inline nlohmann::json ReadGoldenJson(const std::string& rel) {
  std::ifstream in(GoldenDir() + "/" + rel);
  return nlohmann::json::parse(in);
}

// The golden tiny DiT's config from its plain-JSON copy (same field names as
// model_args plus derived ones).
inline DiTConfig GoldenConfig() {
  return DiTConfigFromArgs(ReadGoldenJson("dit/config.json"), "dit/config.json")
      .value();
}

// The golden tiny DiT's weights.
inline io::TensorMap GoldenWeights() {
  return io::LoadSafetensors(GoldenDir() +
                             "/dit/consolidated.00-of-01.safetensors")
      .value();
}

// Returns max|a-b| / max|b|.
inline double MaxRelError(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
  return ((a64 - b64).abs().max() / b64.abs().max()).item<double>();
}

// Returns rms(a-b) / rms(b).
inline double RmsRelError(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
  return ((a64 - b64).pow(2).mean().sqrt() / b64.pow(2).mean().sqrt())
      .item<double>();
}

}  // namespace lvs::dit::testing

#endif  // LVS_TESTS_DIT_DIT_TEST_UTIL_H_
