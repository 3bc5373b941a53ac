// Conformance runners of the VAE: `vae` (decode cases with optional
// per-chunk decoder traces, encode cases) and `vae_bf16`. Every case of the
// sidecar is run: a case with a `<case>.z` input is a decode, one with a
// `<case>.video` input an encode. The checkpoint is `<golden>/vae`; trace
// tensors are produced for the stages the golden file holds.
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/vae/vae.h"
#include "tools/lvs_model/conform.h"

namespace lvs::conform {
namespace {

absl::Status RunDecodeCase(const vae::CogVideoXVae& model, const ConformCase& c,
                           const std::string& name, io::TensorMap& out) {
  LVS_ASSIGN_OR_RETURN(torch::Tensor z, c.Input(name + ".z"));
  const std::string trace = name + ".trace.chunk";
  LVS_ASSIGN_OR_RETURN(torch::Tensor sample,
                       model.Decode(z, {},
                                    [&](int64_t chunk, const std::string& stage,
                                        const torch::Tensor& value) {
                                      std::string key = absl::StrCat(
                                          trace, chunk, ".decoder.", stage);
                                      if (c.golden.count(key))
                                        out[key] = value.clone();
                                    }));
  out[name + ".sample"] = sample;
  return absl::OkStatus();
}

absl::Status RunEncodeCase(const vae::CogVideoXVae& model, const ConformCase& c,
                           const std::string& name, io::TensorMap& out) {
  LVS_ASSIGN_OR_RETURN(torch::Tensor video, c.Input(name + ".video"));
  LVS_ASSIGN_OR_RETURN(vae::LatentDist dist, model.Encode(video));
  out[name + ".mean"] = dist.mean;
  out[name + ".logvar"] = dist.logvar;
  out[name + ".std"] = dist.std;
  return absl::OkStatus();
}

absl::StatusOr<io::TensorMap> RunVae(const ConformCase& c) {
  vae::VaeOptions options;
  options.dtype = c.bf16 ? torch::kBFloat16 : torch::kFloat32;
  LVS_ASSIGN_OR_RETURN(
      std::unique_ptr<vae::CogVideoXVae> model,
      vae::CogVideoXVae::Create(c.golden_dir + "/vae", options));
  if (!c.sidecar.contains("cases") || !c.sidecar["cases"].is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.name, ".json: no \"cases\" object"));
  }
  io::TensorMap out;
  for (const auto& [name, spec] : c.sidecar["cases"].items()) {
    if (c.golden.count(name + ".z")) {
      LVS_RETURN_IF_ERROR(RunDecodeCase(*model, c, name, out));
    } else if (c.golden.count(name + ".video")) {
      LVS_RETURN_IF_ERROR(RunEncodeCase(*model, c, name, out));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(c.name, ": case \"", name, "\" has neither ", name,
                       ".z nor ", name, ".video"));
    }
  }
  return out;
}

LVS_REGISTER_CONFORM("vae", RunVae);
LVS_REGISTER_CONFORM("vae_bf16", RunVae);

}  // namespace
}  // namespace lvs::conform
