#include "tools/lvs_model/conform.h"

#include <ATen/Context.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "model/common/torch_status.h"
#include "tools/lvs_model/golden_check.h"

namespace lvs::conform {
namespace {

std::map<std::string, ConformFn>& Registry() {
  static auto* registry = new std::map<std::string, ConformFn>();
  return *registry;
}

absl::StatusOr<nlohmann::json> ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": invalid JSON"));
  }
  return j;
}

torch::ScalarType OutputType(torch::ScalarType golden) {
  return golden;  // F32 floats, I64 ids/masks, U8 frames: as the golden file.
}

// Runs one file; returns the outputs converted to the golden dtypes.
absl::StatusOr<io::TensorMap> RunOne(const ConformCase& c,
                                     const ConformFn& fn) {
  absl::StatusOr<io::TensorMap> result;
  try {
    result = fn(c);
  } catch (const std::exception& e) {  // LibTorch 1.13 throws some as these.
    return common::TorchErrorToStatus(e, c.name);
  }
  LVS_ASSIGN_OR_RETURN(io::TensorMap got, std::move(result));
  io::TensorMap out;
  std::vector<std::string> missing;
  for (const auto& [name, ref] : c.golden) {
    if (IsInputTensor(name)) continue;
    auto it = got.find(name);
    if (it == got.end()) {
      if (!IsTraceTensor(c.name, name)) missing.push_back(name);
      continue;
    }
    out[name] =
        it->second.detach().to(torch::kCPU, OutputType(ref.scalar_type()));
  }
  if (!missing.empty()) {
    return absl::InternalError(absl::StrCat(c.name, ": runner produced no ",
                                            absl::StrJoin(missing, ", ")));
  }
  return out;
}

}  // namespace

absl::StatusOr<torch::Tensor> ConformCase::Input(const std::string& key) const {
  auto it = golden.find(key);
  if (it == golden.end()) {
    return absl::NotFoundError(absl::StrCat(golden_dir, "/vectors/", name,
                                            ".safetensors: no tensor \"", key,
                                            "\""));
  }
  return it->second;
}

bool RegisterConform(const std::string& name, ConformFn fn) {
  Registry()[name] = std::move(fn);
  return true;
}

std::vector<std::string> RegisteredConformNames() {
  std::vector<std::string> names;
  for (const auto& [name, fn] : Registry()) names.push_back(name);
  return names;
}

bool IsInputTensor(const std::string& name) {
  static const std::regex kInput(
      R"(^(inputs\.|case\d+\.t$|decode\d+\.z$|encode\d+\.video$|z$))");
  return std::regex_search(name, kInput);
}

bool IsTraceTensor(const std::string& stem, const std::string& name) {
  return stem == "dit_trace" || absl::StrContains(name, ".trace.") ||
         absl::StartsWith(name, "layer_in.");
}

absl::Status RunConform(const ConformOptions& options) {
  namespace fs = std::filesystem;
  const std::string vec_dir = options.golden_dir + "/vectors";
  if (!fs::is_directory(vec_dir)) {
    return absl::NotFoundError(absl::StrCat(vec_dir, ": not a directory"));
  }
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat(options.out_dir, ": cannot create: ", ec.message()));
  }
  std::vector<std::string> names = options.only;
  if (names.empty()) {
    for (const std::string& n : RegisteredConformNames()) {
      if (fs::exists(vec_dir + "/" + n + ".safetensors")) names.push_back(n);
    }
  }
  // Float32 files are checked to 1e-4 of peak: keep cuBLAS and cuDNN off
  // TF32 (LibTorch lets cuDNN use it by default), so a GPU computes real fp32.
  at::globalContext().setAllowTF32CuDNN(false);
  at::globalContext().setFloat32MatmulPrecision("highest");
  int passed = 0, failed = 0;
  for (const std::string& name : names) {
    auto fn = Registry().find(name);
    if (fn == Registry().end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--only: no runner for \"", name,
          "\"; known: ", absl::StrJoin(RegisteredConformNames(), ",")));
    }
    ConformCase c;
    c.golden_dir = options.golden_dir;
    c.name = name;
    c.bf16 = absl::EndsWith(name, "_bf16");
    c.device = options.device;
    LVS_ASSIGN_OR_RETURN(c.sidecar, ReadJson(vec_dir + "/" + name + ".json"));
    LVS_ASSIGN_OR_RETURN(
        c.golden, io::LoadSafetensors(vec_dir + "/" + name + ".safetensors"));
    absl::StatusOr<io::TensorMap> out = RunOne(c, fn->second);
    if (!out.ok()) {
      std::printf("FAIL %s: %s\n", name.c_str(),
                  std::string(out.status().message()).c_str());
      ++failed;
      continue;
    }
    LVS_RETURN_IF_ERROR(io::SaveSafetensors(
        options.out_dir + "/" + name + ".safetensors", *out));
    if (!options.check) {
      std::printf("wrote %s: %zu tensors\n", name.c_str(), out->size());
      ++passed;
      continue;
    }
    CheckReport report = CheckAgainstGolden(name, c.golden, *out);
    if (report.problems.empty()) {
      std::printf("ok   %s: %d tensors\n", name.c_str(), report.checked);
      ++passed;
    } else {
      std::printf("FAIL %s: %d checked; %s\n", name.c_str(), report.checked,
                  absl::StrJoin(report.problems, "; ").c_str());
      ++failed;
    }
    std::fflush(stdout);
  }
  std::printf("conformance: %d passed, %d failed\n", passed, failed);
  if (failed > 0) {
    return absl::InternalError(
        absl::StrCat(failed, " conformance file(s) failed"));
  }
  return absl::OkStatus();
}

}  // namespace lvs::conform
