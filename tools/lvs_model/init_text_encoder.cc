#include "tools/lvs_model/init_text_encoder.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/common/torch_status.h"
#include "model/io/safetensors.h"
#include "model/text_encoder/gemma2_config.h"
#include "model/text_encoder/gemma2_encoder.h"
#include "nlohmann/json.hpp"

namespace lvs::init_text_encoder {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

absl::Status WriteText(const std::string& path, const std::string& text) {
  return io::WriteFileAtomically(path, text.data(), text.size());
}

}  // namespace

absl::Status InitTextEncoder(const InitTextEncoderOptions& options) {
  LVS_ASSIGN_OR_RETURN(std::string config_text, ReadFile(options.config));
  const nlohmann::json config_json =
      nlohmann::json::parse(config_text, nullptr, false);
  LVS_ASSIGN_OR_RETURN(
      text_encoder::Gemma2Config config,
      text_encoder::Gemma2Config::FromJson(config_json, options.config));
  LVS_ASSIGN_OR_RETURN(std::string tokenizer, ReadFile(options.tokenizer));
  const double stddev = config_json.value("initializer_range", 0.02);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  try {
    torch::NoGradGuard no_grad;
    text_encoder::Gemma2Model model(config, config.num_hidden_layers,
                                    /*final_norm=*/true);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
    for (const auto& p : model->named_parameters()) {
      torch::Tensor t = torch::zeros(p.value().sizes(), torch::kFloat32);
      const bool embedding = p.key() == "embed_tokens.weight";
      const double std_p = embedding && options.embedding_std > 0
                               ? options.embedding_std
                               : stddev;
      if (!absl::EndsWith(p.key(), "norm.weight")) t.normal_(0, std_p, gen);
      tensors.emplace_back(absl::StrCat("model.", p.key()), t);
    }
  } catch (const std::exception& e) {
    return common::TorchErrorToStatus(e, "building the Gemma-2 weights");
  }
  std::vector<io::TensorToWrite> out;
  for (const auto& [name, t] : tensors) {
    out.push_back({name, io::DType::kF32, t.sizes().vec(), t.data_ptr(),
                   static_cast<size_t>(t.numel()) * sizeof(float)});
  }
  std::error_code ec;
  std::filesystem::create_directories(options.out_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("creating ", options.out_dir, ": ", ec.message()));
  }
  const std::string& dir = options.out_dir;
  LVS_RETURN_IF_ERROR(io::WriteSafetensors(dir + "/model.safetensors", out,
                                           {{"format", "pt"}}));
  LVS_RETURN_IF_ERROR(WriteText(dir + "/config.json", config_text));
  LVS_RETURN_IF_ERROR(WriteText(dir + "/tokenizer.model", tokenizer));
  const nlohmann::json special = {{"bos_token", "<bos>"},
                                  {"eos_token", "<eos>"},
                                  {"pad_token", "<pad>"},
                                  {"unk_token", "<unk>"}};
  nlohmann::json tok_config = special;
  tok_config["add_bos_token"] = true;
  tok_config["add_eos_token"] = false;
  tok_config["padding_side"] = "left";
  tok_config["tokenizer_class"] = "GemmaTokenizer";
  LVS_RETURN_IF_ERROR(
      WriteText(dir + "/special_tokens_map.json", special.dump(2) + "\n"));
  return WriteText(dir + "/tokenizer_config.json", tok_config.dump(2) + "\n");
}

void AddInitTextEncoderCommand(CLI::App& app) {
  auto options = std::make_shared<InitTextEncoderOptions>();
  CLI::App* cmd = app.add_subcommand(
      "init-text-encoder",
      "Write a Gemma-2 encoder with fixed-seed random weights (HF layout)");
  cmd->add_option("--config", options->config, "Gemma-2 config.json")
      ->required();
  cmd->add_option("--tokenizer", options->tokenizer,
                  "sentencepiece tokenizer.model")
      ->required();
  cmd->add_option("--out", options->out_dir, "output directory")->required();
  cmd->add_option("--seed", options->seed, "weight seed");
  cmd->add_option("--embedding-std", options->embedding_std,
                  "std of the token embeddings (0: the config's "
                  "initializer_range); larger values keep token identity "
                  "ahead of the context the sandwich-normed layers add");
  cmd->callback([options] {
    absl::Status s = InitTextEncoder(*options);
    if (!s.ok()) {
      std::fprintf(stderr, "lvs-model init-text-encoder: %s\n",
                   std::string(s.message()).c_str());
      throw CLI::RuntimeError(1);
    }
  });
}

}  // namespace lvs::init_text_encoder
