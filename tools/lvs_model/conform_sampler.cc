// Conformance runners of the sampler: `schedule` (time grids and the times
// the model sees), `dit_multi_cfg` (one guided velocity), `sampler_fp32` and
// `sampler_bf16` (whole Euler runs with the golden DiT). Everything is driven
// by the sidecar (configs or config names, step counts, which tensors are the
// inputs) and `<golden>/dit`; resolved per-call values are cross-checked
// against the sidecar.
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "model/dit/dit.h"
#include "model/pipeline/dit_velocity.h"
#include "model/sampler/flow_sampler.h"
#include "model/sampler/multi_cfg.h"
#include "model/sampler/sample_config.h"
#include "model/sampler/schedule.h"
#include "tools/lvs_model/conform.h"

namespace lvs::conform {
namespace {

using sampler::ModelCall;
using sampler::SampleConfig;
using sampler::TimePrecision;

torch::Tensor FloatVector(const std::vector<float>& v) {
  return torch::tensor(v, torch::kFloat32);
}

// The config of one sidecar case: its "config" object when present (the
// values the vectors were made with), else the built-in config `name`.
absl::StatusOr<SampleConfig> CaseConfig(const nlohmann::json& c,
                                        const std::string& name) {
  if (c.contains("config"))
    return sampler::SampleConfigFromJson(c["config"], name);
  return sampler::NamedSampleConfig(name);
}

// Checks planned calls against a sidecar list of {t, patch_comb, cfg_scale,
// motion_pos, motion_neg}.
absl::Status CheckResolved(const std::vector<ModelCall>& calls,
                           const nlohmann::json& ref,
                           const std::string& where) {
  if (!ref.is_array() || ref.size() != calls.size()) {
    return absl::InternalError(absl::StrCat(where, ": ", calls.size(),
                                            " planned calls, sidecar lists ",
                                            ref.size()));
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    const ModelCall& c = calls[i];
    const nlohmann::json& r = ref[i];
    if (c.t_model != r.at("t").get<float>() ||
        c.patch.ToString() != r.at("patch_comb").get<std::string>() ||
        c.cfg != r.at("cfg_scale").get<double>() ||
        c.motion_pos != r.at("motion_pos").get<double>() ||
        c.motion_neg != r.at("motion_neg").get<double>()) {
      return absl::InternalError(absl::StrCat(
          where, " call ", i, ": resolved t=", c.t_model, " ",
          c.patch.ToString(), " cfg=", c.cfg, " motion=", c.motion_pos, "/",
          c.motion_neg, ", sidecar says ", r.dump()));
    }
  }
  return absl::OkStatus();
}

// schedule: `<config>.N<N>.t_grid` and `<config>.N<N>.call_t_bf16` per case.
absl::StatusOr<io::TensorMap> RunSchedule(const ConformCase& cc) {
  io::TensorMap out;
  for (const auto& [key, c] : cc.sidecar.at("cases").items()) {
    const size_t dot = key.rfind(".N");
    if (dot == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("schedule case \"", key, "\" is not <config>.N<steps>"));
    }
    LVS_ASSIGN_OR_RETURN(SampleConfig config,
                         CaseConfig(c, key.substr(0, dot)));
    const int n = c.at("num_steps").get<int>();
    LVS_ASSIGN_OR_RETURN(std::vector<float> grid,
                         sampler::ShiftedTimeGrid(n, config.time_shift));
    LVS_ASSIGN_OR_RETURN(
        std::vector<ModelCall> f32,
        sampler::PlanModelCalls(config, n, TimePrecision::kFloat32));
    LVS_ASSIGN_OR_RETURN(
        std::vector<ModelCall> bf16,
        sampler::PlanModelCalls(config, n, TimePrecision::kBFloat16));
    if (c.contains("schedule_fp32")) {
      LVS_RETURN_IF_ERROR(
          CheckResolved(f32, c["schedule_fp32"], key + " fp32"));
    }
    if (c.contains("schedule_bf16")) {
      LVS_RETURN_IF_ERROR(
          CheckResolved(bf16, c["schedule_bf16"], key + " bf16"));
    }
    std::vector<float> call_t;
    for (const ModelCall& call : bf16) call_t.push_back(call.t_model);
    out[key + ".t_grid"] = FloatVector(grid);
    out[key + ".call_t_bf16"] = FloatVector(call_t);
  }
  return out;
}

LVS_REGISTER_CONFORM("schedule", RunSchedule);

// Resolves a sidecar tensor reference: a tensor name of this file, optionally
// indexed (`name[0]`), wrapped as `cat([a, b])`, taken from another vector
// file (`<stem> name`, `name of <stem>`) and/or `rounded to bfloat16`;
// parenthesised remarks are ignored.
absl::StatusOr<torch::Tensor> ResolveTensor(const ConformCase& cc,
                                            std::string ref) {
  static const std::regex kCat(R"(^\s*cat\(\[(.*)\]\)\s*$)");
  std::smatch m;
  if (std::regex_match(ref, m, kCat)) {
    std::vector<torch::Tensor> parts;
    for (absl::string_view part : absl::StrSplit(m[1].str(), ',')) {
      LVS_ASSIGN_OR_RETURN(torch::Tensor t,
                           ResolveTensor(cc, std::string(part)));
      parts.push_back(t);
    }
    return torch::cat(parts, 0);
  }
  if (size_t paren = ref.find(" ("); paren != std::string::npos) {
    ref = ref.substr(0, paren);
  }
  const std::string kRounded = " rounded to bfloat16";
  const bool round_bf16 = absl::EndsWith(ref, kRounded);
  if (round_bf16) ref.resize(ref.size() - kRounded.size());
  static const std::regex kRef(
      R"(^\s*(?:([A-Za-z0-9_]+) )?([A-Za-z0-9_.\-]+)(?:\[(\d+)\])?(?: of ([A-Za-z0-9_]+))?\s*$)");
  if (!std::regex_match(ref, m, kRef)) {
    return absl::InvalidArgumentError(absl::StrCat(
        cc.name, ".json: cannot read tensor reference \"", ref, "\""));
  }
  const std::string stem = m[1].matched ? m[1].str() : m[4].str();
  torch::Tensor t;
  if (stem.empty() || stem == cc.name) {
    LVS_ASSIGN_OR_RETURN(t, cc.Input(m[2].str()));
  } else {
    const std::string path =
        absl::StrCat(cc.golden_dir, "/vectors/", stem, ".safetensors");
    LVS_ASSIGN_OR_RETURN(io::TensorMap other, io::LoadSafetensors(path));
    auto it = other.find(m[2].str());
    if (it == other.end()) {
      return absl::NotFoundError(
          absl::StrCat(path, ": no tensor \"", m[2].str(), "\""));
    }
    t = it->second;
  }
  if (m[3].matched) t = t[std::stoll(m[3].str())];
  if (round_bf16) t = t.to(torch::kBFloat16).to(torch::kFloat32);
  return t;
}

// The model dtype of a vector file.
torch::ScalarType RunDtype(const ConformCase& cc) {
  return cc.bf16 ? torch::kBFloat16 : torch::kFloat32;
}

absl::StatusOr<sampler::VelocityFn> LoadVelocity(const ConformCase& cc) {
  dit::DiTLoadOptions options;
  options.dtype = RunDtype(cc);
  options.device = cc.device;
  LVS_ASSIGN_OR_RETURN(dit::MultiScaleNextDiT model,
                       dit::LoadDiT(cc.golden_dir + "/dit", options));
  return pipeline::DiTVelocity(model);
}

// The kwargs of forward_with_multi_cfg as a config (one negative branch).
absl::StatusOr<SampleConfig> KwargsConfig(const nlohmann::json& kwargs,
                                          const std::string& name) {
  const nlohmann::json& cfg = kwargs.at("cfg_scale");
  const nlohmann::json& motion = kwargs.at("motion_score");
  if (!cfg.is_array() || cfg.size() != 1 || !motion.is_array() ||
      motion.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        name,
        ": expected one cfg_scale and two motion scores (one negative "
        "branch)"));
  }
  nlohmann::json j = {{"P", kwargs.at("patch_comb")},
                      {"cfg", cfg[0]},
                      {"motion", motion[0]},
                      {"negMotion", motion[1]},
                      {"renorm", kwargs.at("renorm_cfg")},
                      {"step", 2},
                      {"ts", 1.0}};
  return sampler::SampleConfigFromJson(j, name);
}

// dit_multi_cfg: `case<k>.out_row0` = row 0 of forward_with_multi_cfg.
absl::StatusOr<io::TensorMap> RunMultiCfg(const ConformCase& cc) {
  LVS_ASSIGN_OR_RETURN(sampler::VelocityFn model, LoadVelocity(cc));
  const torch::ScalarType dtype = RunDtype(cc);
  const TimePrecision precision =
      cc.bf16 ? TimePrecision::kBFloat16 : TimePrecision::kFloat32;
  io::TensorMap out;
  torch::NoGradGuard no_grad;
  for (const auto& [key, c] : cc.sidecar.at("cases").items()) {
    LVS_ASSIGN_OR_RETURN(SampleConfig config,
                         KwargsConfig(c.at("kwargs"), key));
    LVS_ASSIGN_OR_RETURN(torch::Tensor x,
                         ResolveTensor(cc, c.at("x").get<std::string>()));
    LVS_ASSIGN_OR_RETURN(
        torch::Tensor t,
        ResolveTensor(cc, c.at("t_tensor").get<std::string>()));
    LVS_ASSIGN_OR_RETURN(
        torch::Tensor cap,
        ResolveTensor(cc, c.at("cap_feats").get<std::string>()));
    const std::string mask_ref = c.contains("cap_mask")
                                     ? c["cap_mask"].get<std::string>()
                                     : std::string("inputs.cap_mask");
    LVS_ASSIGN_OR_RETURN(torch::Tensor mask, ResolveTensor(cc, mask_ref));
    t = t.to(dtype);
    ModelCall call = sampler::ResolveAt(
        config, sampler::RoundTime(t[0].item<float>(), precision));
    if (c.contains("resolved")) {
      nlohmann::json resolved = c["resolved"];
      resolved["t"] = call.t_model;  // The sidecar stores the requested t.
      LVS_RETURN_IF_ERROR(
          CheckResolved({call}, nlohmann::json::array({resolved}), key));
    }
    sampler::Guidance guidance{cap.to(cc.device, dtype), mask.to(cc.device)};
    LVS_ASSIGN_OR_RETURN(
        sampler::GuidedVelocity v,
        sampler::MultiCfgVelocity(model, x.slice(0, 0, 1).to(cc.device, dtype),
                                  t.slice(0, 0, 1).to(cc.device), guidance,
                                  call, config.renorm));
    const nlohmann::json& diag =
        c.value("diagnostics", nlohmann::json::object());
    if (diag.contains("renorm_applied") &&
        diag["renorm_applied"].get<bool>() != v.renormalized) {
      return absl::InternalError(absl::StrCat(
          key, ": renorm ", v.renormalized ? "fired" : "did not fire",
          ", the reference's did the opposite (norms ", v.pos_norm, " -> ",
          v.guided_norm, ")"));
    }
    out[c.at("output").get<std::string>()] = v.velocity.cpu();
  }
  return out;
}

LVS_REGISTER_CONFORM("dit_multi_cfg", RunMultiCfg);

// sampler_fp32 / sampler_bf16: Euler runs; per run `<run>.t_grid`,
// `<run>.call_t` [N-1, 2] (the t of every call, guidance batch width 2), and
// the states the sidecar's `stored` names.
absl::StatusOr<io::TensorMap> RunSampler(const ConformCase& cc) {
  LVS_ASSIGN_OR_RETURN(sampler::VelocityFn model, LoadVelocity(cc));
  const torch::ScalarType dtype = RunDtype(cc);
  io::TensorMap out;
  for (const auto& [run, c] : cc.sidecar.at("cases").items()) {
    LVS_ASSIGN_OR_RETURN(SampleConfig config, CaseConfig(c, run));
    const nlohmann::json& stored = c.at("stored");
    LVS_ASSIGN_OR_RETURN(torch::Tensor z,
                         ResolveTensor(cc, c.at("z").get<std::string>()));
    if (z.dim() == 4) z = z.unsqueeze(0);  // an indexed state [C, F, H, W]
    LVS_ASSIGN_OR_RETURN(
        torch::Tensor cap,
        ResolveTensor(cc, c.at("cap_feats").get<std::string>()));
    const std::string mask_ref = c.contains("cap_mask")
                                     ? c["cap_mask"].get<std::string>()
                                     : std::string("inputs.cap_mask");
    LVS_ASSIGN_OR_RETURN(torch::Tensor mask, ResolveTensor(cc, mask_ref));
    sampler::SamplerOptions options;
    options.dtype = dtype;
    options.grid_points = c.at("num_steps").get<int>();
    options.keep_states =
        stored.contains("xs") || stored.contains("xs_selected");
    sampler::Guidance guidance{cap.to(cc.device, dtype), mask.to(cc.device)};
    LVS_ASSIGN_OR_RETURN(
        sampler::SampleResult r,
        sampler::SampleFlow(model, config, z.to(cc.device, dtype), guidance,
                            options));
    if (c.contains("schedule")) {
      LVS_RETURN_IF_ERROR(CheckResolved(r.calls, c["schedule"], run));
    }
    LVS_ASSIGN_OR_RETURN(
        std::vector<float> grid,
        sampler::ShiftedTimeGrid(options.grid_points, config.time_shift));
    std::vector<float> call_t;
    for (const ModelCall& call : r.calls) {
      call_t.insert(call_t.end(), {call.t_model, call.t_model});
    }
    out[run + ".t_grid"] = FloatVector(grid);
    out[run + ".call_t"] =
        FloatVector(call_t).view({static_cast<int64_t>(r.calls.size()), 2});
    out[stored.at("final").get<std::string>()] = r.latent.cpu();
    if (stored.contains("xs")) {
      out[stored["xs"].get<std::string>()] = torch::stack(r.states).cpu();
    }
    if (stored.contains("xs_selected")) {
      std::vector<torch::Tensor> selected;
      for (const auto& idx : stored.at("xs_indices")) {
        const size_t i = idx.get<size_t>();
        if (i >= r.states.size()) {
          return absl::InvalidArgumentError(absl::StrCat(
              run, ": xs index ", i, " beyond ", r.states.size(), " states"));
        }
        selected.push_back(r.states[i]);
      }
      out[stored["xs_selected"].get<std::string>()] =
          torch::stack(selected).cpu();
    }
  }
  return out;
}

LVS_REGISTER_CONFORM("sampler_fp32", RunSampler);
LVS_REGISTER_CONFORM("sampler_bf16", RunSampler);

}  // namespace
}  // namespace lvs::conform
