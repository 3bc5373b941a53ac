// Conformance runners of the DiT: `dit_forward`, `dit_forward_bf16` and
// `dit_trace`, driven by each file's sidecar and the checkpoint in
// `<golden>/dit`.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "model/dit/dit.h"
#include "tools/lvs_model/conform.h"

namespace lvs::conform {
namespace {

// The inputs of one forward call, read from tensors named `<prefix>.x`
// (batched) or `<prefix>.x.<i>` (list), `<prefix>.t`, ...
struct ForwardInputs {
  std::vector<torch::Tensor> items;  // List items, or empty for a batch.
  torch::Tensor x, t, cap_feats, cap_mask, motion_score;
};

absl::StatusOr<ForwardInputs> ReadInputs(const io::TensorMap& tensors,
                                         const std::string& prefix,
                                         const std::string& source,
                                         torch::Device device) {
  auto get = [&](const std::string& name) -> absl::StatusOr<torch::Tensor> {
    auto it = tensors.find(absl::StrCat(prefix, ".", name));
    if (it == tensors.end()) {
      return absl::NotFoundError(
          absl::StrCat(source, ": no tensor \"", prefix, ".", name, "\""));
    }
    return it->second.to(device);
  };
  ForwardInputs in;
  for (int i = 0; tensors.count(absl::StrCat(prefix, ".x.", i)); ++i) {
    LVS_ASSIGN_OR_RETURN(torch::Tensor item, get(absl::StrCat("x.", i)));
    in.items.push_back(item);
  }
  if (in.items.empty()) {
    LVS_ASSIGN_OR_RETURN(in.x, get("x"));
  }
  LVS_ASSIGN_OR_RETURN(in.t, get("t"));
  LVS_ASSIGN_OR_RETURN(in.cap_feats, get("cap_feats"));
  LVS_ASSIGN_OR_RETURN(in.cap_mask, get("cap_mask"));
  LVS_ASSIGN_OR_RETURN(in.motion_score, get("motion_score"));
  return in;
}

// Reads an integer field of a sidecar case.
absl::StatusOr<int64_t> CaseInt(const nlohmann::json& spec,
                                const std::string& field,
                                const std::string& where) {
  if (!spec.contains(field) || !spec[field].is_number_integer()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": missing integer \"", field, "\""));
  }
  return spec[field].get<int64_t>();
}

// Runs one call; returns the outputs in item order (one for a batch).
absl::StatusOr<std::vector<torch::Tensor>> RunCall(
    dit::MultiScaleNextDiT& model, const ForwardInputs& in, int64_t p,
    int64_t pf, dit::DiTTrace* trace) {
  torch::NoGradGuard no_grad;
  if (!in.items.empty()) {
    LVS_RETURN_IF_ERROR(model->ValidateInputs(
        in.items, in.t, in.cap_feats, in.cap_mask, in.motion_score, p, pf));
    return model->forward_list(in.items, in.t, in.cap_feats, in.cap_mask,
                               in.motion_score, p, pf, trace);
  }
  LVS_ASSIGN_OR_RETURN(torch::Tensor out,
                       model->Forward(in.x, in.t, in.cap_feats, in.cap_mask,
                                      in.motion_score, p, pf));
  return std::vector<torch::Tensor>{out};
}

absl::StatusOr<dit::MultiScaleNextDiT> LoadModel(const ConformCase& c) {
  dit::DiTLoadOptions options;
  options.dtype = c.bf16 ? torch::kBFloat16 : torch::kFloat32;
  options.device = c.device;
  return dit::LoadDiT(c.golden_dir + "/dit", options);
}

// dit_forward / dit_forward_bf16: every case of the sidecar.
absl::StatusOr<io::TensorMap> RunDiTForward(const ConformCase& c) {
  LVS_ASSIGN_OR_RETURN(dit::MultiScaleNextDiT model, LoadModel(c));
  io::TensorMap out;
  for (const auto& [name, spec] : c.sidecar.at("cases").items()) {
    const std::string where = absl::StrCat(c.name, ".json case ", name);
    LVS_ASSIGN_OR_RETURN(int64_t p, CaseInt(spec, "patch_size", where));
    LVS_ASSIGN_OR_RETURN(int64_t pf, CaseInt(spec, "f_patch_size", where));
    const std::string inputs = spec.value("inputs", "");
    absl::string_view prefix = inputs;
    if (!absl::ConsumeSuffix(&prefix, ".*")) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": \"inputs\" is not <prefix>.*"));
    }
    LVS_ASSIGN_OR_RETURN(
        ForwardInputs in,
        ReadInputs(c.golden, std::string(prefix), c.name, c.device));
    LVS_ASSIGN_OR_RETURN(std::vector<torch::Tensor> got,
                         RunCall(model, in, p, pf, nullptr));
    const auto names = spec.at("outputs").get<std::vector<std::string>>();
    if (names.size() != got.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", names.size(),
                       " outputs listed, model gave ", got.size()));
    }
    for (size_t i = 0; i < names.size(); ++i) out[names[i]] = got[i];
  }
  return out;
}

// dit_trace: one list call whose inputs live in another vector file
// (sidecar "inputs": "<file>.safetensors <prefix>.*").
absl::StatusOr<io::TensorMap> RunDiTTrace(const ConformCase& c) {
  LVS_ASSIGN_OR_RETURN(dit::MultiScaleNextDiT model, LoadModel(c));
  io::TensorMap out;
  for (const auto& [name, spec] : c.sidecar.at("cases").items()) {
    const std::string where = absl::StrCat(c.name, ".json case ", name);
    LVS_ASSIGN_OR_RETURN(int64_t p, CaseInt(spec, "patch_size", where));
    LVS_ASSIGN_OR_RETURN(int64_t pf, CaseInt(spec, "f_patch_size", where));
    const std::string inputs = spec.value("inputs", "");
    std::vector<absl::string_view> words = absl::StrSplit(inputs, ' ');
    if (words.size() < 2 || !absl::EndsWith(words[0], ".safetensors") ||
        !absl::ConsumeSuffix(&words[1], ".*")) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": \"inputs\" is not \"<file>.safetensors <prefix>.*\""));
    }
    const std::string file = absl::StrCat(c.golden_dir, "/vectors/", words[0]);
    LVS_ASSIGN_OR_RETURN(io::TensorMap src, io::LoadSafetensors(file));
    LVS_ASSIGN_OR_RETURN(
        ForwardInputs in,
        ReadInputs(src, std::string(words[1]), file, c.device));
    dit::DiTTrace trace;
    LVS_RETURN_IF_ERROR(RunCall(model, in, p, pf, &trace).status());
    for (auto& [key, value] : trace) out[key] = value;
  }
  return out;
}

LVS_REGISTER_CONFORM("dit_forward", RunDiTForward);
LVS_REGISTER_CONFORM("dit_forward_bf16", RunDiTForward);
LVS_REGISTER_CONFORM("dit_trace", RunDiTTrace);

}  // namespace
}  // namespace lvs::conform
