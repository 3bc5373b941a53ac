#include "tools/lvs_model/golden_check.h"

#include <cmath>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "tools/lvs_model/conform.h"

namespace lvs::conform {

Tolerance ToleranceFor(const std::string& stem, const std::string& name) {
  const bool bf16 = absl::EndsWith(stem, "_bf16");
  if (absl::EndsWith(name, "input_ids") ||
      absl::EndsWith(name, "attention_mask") ||
      absl::EndsWith(name, "call_t_bf16") ||
      absl::EndsWith(name, "cu_seqlens") || absl::EndsWith(name, "src_ids")) {
    return {Tolerance::kExact, 0};
  }
  if (absl::StartsWith(name, "frames_uint8")) {
    return bf16 ? Tolerance{Tolerance::kU8Rms, 0.08 * 255}
                : Tolerance{Tolerance::kU8, 1};
  }
  if (absl::StartsWith(stem, "schedule") || absl::EndsWith(name, "t_grid") ||
      absl::EndsWith(name, "call_t")) {
    return {Tolerance::kMaxRel, 1e-6};
  }
  const bool loose =
      absl::StartsWith(stem, "sampler") || absl::StartsWith(stem, "e2e");
  if (bf16) return {Tolerance::kRmsRel, loose ? 0.08 : 0.03};
  return {Tolerance::kMaxRel, loose ? 1e-3 : 1e-4};
}

namespace {

std::string Check(const Tolerance& tol, const torch::Tensor& ref_in,
                  const torch::Tensor& got_in) {
  torch::Tensor ref = ref_in.to(torch::kFloat64).flatten();
  torch::Tensor got = got_in.to(torch::kFloat64).flatten();
  switch (tol.kind) {
    case Tolerance::kExact: {
      int64_t bad = ref.ne(got).sum().item<int64_t>();
      return bad == 0 ? "" : absl::StrCat(bad, " of ", ref.numel(), " differ");
    }
    case Tolerance::kU8: {
      double worst = ref.numel() ? (ref - got).abs().max().item<double>() : 0;
      return worst <= tol.bound ? ""
                                : absl::StrFormat("max |d| %.0f levels", worst);
    }
    default:
      break;
  }
  if (!torch::isfinite(got).all().item<bool>()) return "non-finite values";
  if (tol.kind == Tolerance::kU8Rms) {
    double rms = (ref - got).pow(2).mean().sqrt().item<double>();
    return rms <= tol.bound ? "" : absl::StrFormat("rms %.2f levels", rms);
  }
  double peak = ref.numel() ? ref.abs().max().item<double>() : 0.0;
  if (peak == 0) peak = 1;
  if (tol.kind == Tolerance::kMaxRel) {
    double worst = ref.numel() ? (ref - got).abs().max().item<double>() : 0.0;
    return worst <= tol.bound * peak
               ? ""
               : absl::StrFormat("max|d|/peak %.2e > %g", worst / peak, tol.bound);
  }
  double num = (ref - got).norm().item<double>();
  double den = ref.norm().item<double>();
  if (den == 0) den = 1;
  return num / den <= tol.bound
             ? ""
             : absl::StrFormat("rms rel %.2e > %g", num / den, tol.bound);
}

}  // namespace

CheckReport CheckAgainstGolden(const std::string& stem,
                               const io::TensorMap& golden,
                               const io::TensorMap& got,
                               bool traces_optional) {
  CheckReport report;
  for (const auto& [name, ref] : golden) {
    if (IsInputTensor(name)) continue;
    auto it = got.find(name);
    if (it == got.end()) {
      if (!(traces_optional && IsTraceTensor(stem, name))) {
        report.problems.push_back(absl::StrCat(name, " missing"));
      }
      continue;
    }
    if (it->second.sizes() != ref.sizes()) {
      report.problems.push_back(absl::StrCat(
          name, " shape [", absl::StrJoin(it->second.sizes(), ","), "] != [",
          absl::StrJoin(ref.sizes(), ","), "]"));
      continue;
    }
    ++report.checked;
    std::string problem = Check(ToleranceFor(stem, name), ref, it->second);
    if (!problem.empty()) report.problems.push_back(name + ": " + problem);
  }
  return report;
}

}  // namespace lvs::conform
