// Conformance runners of the whole pipeline: `e2e_fp32` and `e2e_bf16`
// (tokenizer ids and mask, caption features, the time of every model call,
// every sampler state, final latent, VAE input, decoded video and uint8
// frames). Driven only by the sidecar's single case (prompts, system prompt,
// config, step count, resolution, frames) and the stored `z`; the resolved
// plan is cross-checked against the sidecar's shapes.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/pipeline/pipeline.h"
#include "tools/lvs_model/conform.h"

namespace lvs::conform {
namespace {

// Builds the request of the sidecar case `c`.
absl::StatusOr<pipeline::GenerationRequest> CaseRequest(const nlohmann::json& c,
                                                        bool bf16) {
  pipeline::GenerationRequest r;
  r.prompt = c.at("prompt").get<std::string>();
  r.negative_prompt = c.value("neg_prompt", std::string());
  LVS_ASSIGN_OR_RETURN(auto wh, pipeline::ParseResolution(
                                    c.at("resolution").get<std::string>()));
  r.width = wh[0];
  r.height = wh[1];
  r.frames = c.at("frames_requested").get<int>();
  const std::string name = c.at("sample_config").get<std::string>();
  if (c.contains("config")) {
    LVS_ASSIGN_OR_RETURN(r.config,
                         sampler::SampleConfigFromJson(c["config"], name));
  } else {
    r.sample_config = name;
  }
  r.grid_points = c.at("num_steps").get<int>();
  r.precision =
      bf16 ? pipeline::Precision::kBFloat16 : pipeline::Precision::kFloat32;
  return r;
}

absl::Status CheckPlan(const pipeline::GenerationPlan& plan,
                       const nlohmann::json& c, const std::string& where) {
  const std::vector<int64_t> shape(plan.latent_shape.begin(),
                                   plan.latent_shape.end());
  if (c.contains("latent_shape") &&
      c["latent_shape"].get<std::vector<int64_t>>() != shape) {
    return absl::InternalError(absl::StrCat(
        where, ": planned latent ", c10::str(torch::IntArrayRef(shape)),
        ", sidecar says ", c["latent_shape"].dump()));
  }
  if (c.contains("output_frames") &&
      c["output_frames"].get<int64_t>() != plan.output_frames) {
    return absl::InternalError(
        absl::StrCat(where, ": planned ", plan.output_frames,
                     " frames, sidecar says ", c["output_frames"].dump()));
  }
  return absl::OkStatus();
}

absl::StatusOr<io::TensorMap> RunE2E(const ConformCase& cc) {
  const nlohmann::json& cases = cc.sidecar.at("cases");
  if (cases.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        cc.name, ".json: expected one case, found ", cases.size()));
  }
  const nlohmann::json& c = cases.begin().value();
  LVS_ASSIGN_OR_RETURN(pipeline::GenerationRequest request,
                       CaseRequest(c, cc.bf16));
  pipeline::PipelineOptions options;
  options.dit_dir = cc.golden_dir + "/dit";
  options.text_encoder_dir = cc.golden_dir + "/text_encoder";
  options.vae_dir = cc.golden_dir + "/vae";
  options.device = cc.device.str();
  options.precision = request.precision;
  if (c.contains("system_prompt")) {
    options.system_prompt = c["system_prompt"].get<std::string>();
  }
  LVS_ASSIGN_OR_RETURN(auto pipe, pipeline::Pipeline::Create(options));
  LVS_ASSIGN_OR_RETURN(torch::Tensor z, cc.Input("z"));
  pipeline::GenerationTrace trace;
  LVS_ASSIGN_OR_RETURN(pipeline::GenerationResult result,
                       pipe->Generate(request, {}, z, &trace));
  LVS_RETURN_IF_ERROR(CheckPlan(result.plan, c, cc.name));

  io::TensorMap out;
  out["input_ids"] = trace.input_ids;
  out["attention_mask"] = trace.attention_mask;
  out["cap_feats"] = trace.cap_feats;
  std::vector<float> call_t;
  for (const sampler::ModelCall& call : trace.calls) {
    call_t.push_back(call.t_model);
    call_t.push_back(call.t_model);
  }
  out["call_t"] = torch::tensor(call_t, torch::kFloat32)
                      .view({static_cast<int64_t>(trace.calls.size()), 2});
  // N states [1, C, n, h, w] -> [N, 1, C, n, h, w]
  out["xs_row0"] = torch::stack(trace.states, 0);
  out["final_latent"] = trace.final_latent;
  out["vae_input"] = trace.vae_input.to(torch::kFloat32);
  out["decoded"] = trace.decoded;
  out["frames_uint8"] = trace.frames;
  return out;
}

LVS_REGISTER_CONFORM("e2e_fp32", RunE2E);
LVS_REGISTER_CONFORM("e2e_bf16", RunE2E);

}  // namespace
}  // namespace lvs::conform
