#include "model/io/state_dict.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace lvs::io {
namespace {

std::string ShapeString(at::IntArrayRef shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

bool IsWrapperSegment(absl::string_view s) {
  return s == "_orig_mod" || s == "module" ||
         s == "_checkpoint_wrapped_module" || s == "_fsdp_wrapped_module";
}

}  // namespace

std::string CanonicalKey(absl::string_view key) {
  std::vector<absl::string_view> kept;
  for (absl::string_view part : absl::StrSplit(key, '.')) {
    if (!IsWrapperSegment(part)) kept.push_back(part);
  }
  return absl::StrJoin(kept, ".");
}

absl::StatusOr<TensorMap> CanonicalizeKeys(const TensorMap& tensors,
                                           const std::string& source) {
  TensorMap out;
  for (const auto& [key, tensor] : tensors) {
    std::string canon = CanonicalKey(key);
    if (!out.emplace(canon, tensor).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": two tensors map to \"", canon,
                       "\" (one is \"", key, "\")"));
    }
  }
  return out;
}

absl::Status LoadStateDict(torch::nn::Module& module, const TensorMap& tensors,
                           const StateDictOptions& options,
                           const std::string& source) {
  std::map<std::string, torch::Tensor> targets;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    targets.emplace(item.key(), item.value());
  }
  for (const auto& item : module.named_buffers(/*recurse=*/true)) {
    targets.emplace(item.key(), item.value());
  }

  std::vector<std::string> unexpected, misshaped;
  std::map<std::string, const torch::Tensor*> matched;
  for (const auto& [raw_key, tensor] : tensors) {
    std::string key = CanonicalKey(raw_key);
    bool ignored = false;
    for (const std::string& p : options.ignored_prefixes) {
      if (key.rfind(p, 0) == 0) ignored = true;
    }
    if (ignored) continue;
    if (!options.strip_prefix.empty()) {
      if (key.rfind(options.strip_prefix, 0) != 0) {
        unexpected.push_back(raw_key);
        continue;
      }
      key = key.substr(options.strip_prefix.size());
    }
    auto it = targets.find(key);
    if (it == targets.end()) {
      unexpected.push_back(raw_key);
      continue;
    }
    if (!matched.emplace(key, &tensor).second) {
      unexpected.push_back(absl::StrCat(raw_key, " (duplicate)"));
      continue;
    }
    if (it->second.sizes() != tensor.sizes()) {
      misshaped.push_back(absl::StrCat(raw_key, ": checkpoint ",
                                       ShapeString(tensor.sizes()), ", model ",
                                       ShapeString(it->second.sizes())));
    }
  }
  std::vector<std::string> missing;
  for (const auto& [key, target] : targets) {
    if (!matched.count(key)) missing.push_back(options.strip_prefix + key);
  }
  if (!missing.empty() || !unexpected.empty() || !misshaped.empty()) {
    std::string msg = absl::StrCat(
        source, ": checkpoint does not match the model: ", missing.size(),
        " missing, ", unexpected.size(), " unexpected, ", misshaped.size(),
        " mis-shaped");
    if (!missing.empty())
      absl::StrAppend(&msg, "; missing: ", absl::StrJoin(missing, ", "));
    if (!unexpected.empty())
      absl::StrAppend(&msg, "; unexpected: ", absl::StrJoin(unexpected, ", "));
    if (!misshaped.empty())
      absl::StrAppend(&msg, "; mis-shaped: ", absl::StrJoin(misshaped, "; "));
    return absl::InvalidArgumentError(msg);
  }

  torch::NoGradGuard no_grad;
  for (const auto& [key, src] : matched) {
    torch::Tensor& dst = targets.at(key);
    torch::ScalarType type = dst.scalar_type();
    if (options.dtype && src->is_floating_point()) type = *options.dtype;
    dst.set_data(src->to(options.device, type).contiguous());
  }
  return absl::OkStatus();
}

}  // namespace lvs::io
