// The DiT's multi-scale patch combination (temporal patch pF, spatial patch
// P) and the one parser of its "FxP" spelling ("1x2": pF 1, P 2), shared by
// the DiT, the sample configs, the trainer, the worker and the server's
// request checks. The checkpoint keys the same combination spatial first,
// "{P}-{pF}".
//
// Torch-free. Thread-safety: plain values and pure functions.
#ifndef LVS_COMMON_PATCH_COMB_H_
#define LVS_COMMON_PATCH_COMB_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lvs::common {

struct PatchComb {
  int64_t f_patch = 1;  // pF: temporal patch.
  int64_t patch = 2;    // P: spatial patch (height and width).

  // Returns the "FxP" spelling of sample configs and requests.
  std::string ToString() const;
  // Returns the checkpoint's module-dict key "{P}-{pF}".
  std::string DiTKey() const;
  // Returns the number of input features of one token: pF * P * P * C.
  int64_t PatchFeatures(int64_t channels) const {
    return f_patch * patch * patch * channels;
  }
  bool operator==(const PatchComb& o) const {
    return f_patch == o.f_patch && patch == o.patch;
  }
  bool operator!=(const PatchComb& o) const { return !(*this == o); }
};

// Parses "FxP" (two positive integers; surrounding blanks ignored), or
// InvalidArgument quoting `text` (callers prefix the field).
absl::StatusOr<PatchComb> ParsePatchComb(absl::string_view text);

}  // namespace lvs::common

#endif  // LVS_COMMON_PATCH_COMB_H_
