#include "common/patch_comb.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lvs::common {

std::string PatchComb::ToString() const {
  return absl::StrCat(f_patch, "x", patch);
}

std::string PatchComb::DiTKey() const {
  return absl::StrCat(patch, "-", f_patch);
}

absl::StatusOr<PatchComb> ParsePatchComb(absl::string_view text) {
  const std::vector<absl::string_view> parts =
      absl::StrSplit(absl::StripAsciiWhitespace(text), 'x');
  PatchComb p;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &p.f_patch) ||
      !absl::SimpleAtoi(parts[1], &p.patch) || p.f_patch < 1 || p.patch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("patch combination \"", text,
                     "\" is not \"FxP\" with positive integers (e.g. \"1x2\": "
                     "pF 1, P 2)"));
  }
  return p;
}

}  // namespace lvs::common
