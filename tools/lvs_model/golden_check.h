// Tolerance checks of conformance outputs against golden vectors, with the
// families of golden README section 7 (exact ids/masks, max-relative for
// float32 files, rms-relative for bfloat16 files, uint8 frame levels).
//
// Thread-safety: pure functions.
#ifndef LVS_TOOLS_LVS_MODEL_GOLDEN_CHECK_H_
#define LVS_TOOLS_LVS_MODEL_GOLDEN_CHECK_H_

#include <string>
#include <vector>

#include "model/io/torch_tensors.h"

namespace lvs::conform {

// How one tensor is compared.
struct Tolerance {
  enum Kind { kExact, kMaxRel, kRmsRel, kU8, kU8Rms } kind;
  double bound;
};

// Returns the tolerance family of tensor `name` in vector file `stem`.
Tolerance ToleranceFor(const std::string& stem, const std::string& name);

// The outcome of comparing one file.
struct CheckReport {
  int checked = 0;
  std::vector<std::string> problems;  // Empty when everything passed.
};

// Compares every non-input tensor of `golden` with `got` (traces may be
// absent when `traces_optional`).
CheckReport CheckAgainstGolden(const std::string& stem,
                               const io::TensorMap& golden,
                               const io::TensorMap& got,
                               bool traces_optional = true);

}  // namespace lvs::conform

#endif  // LVS_TOOLS_LVS_MODEL_GOLDEN_CHECK_H_
