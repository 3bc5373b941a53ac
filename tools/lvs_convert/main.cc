// lvs-convert: turns a checkpoint (torch.save archive, sharded or single
// safetensors) into one safetensors file, tensors in their stored dtypes.
//
//   lvs-convert IN.pth OUT.safetensors [--model-args model_args.pth]
//               [--verify]
//
// Pickles run through the whitelisting VM: a pickle naming any other global
// (os.system, ...) is refused with exit code 1 and the global's name.
// With --model-args, the Namespace's fields are written as JSON to
// `config.json` beside OUT. With --verify, OUT is re-read and every tensor
// compared byte for byte with IN.
//
// Thread-safety: a single-threaded command-line program.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/cli_parse.h"
#include "common/status_macros.h"
#include "model/common/blas_check.h"
#include "model/io/checkpoint.h"
#include "model/io/safetensors.h"
#include "model/io/torch_pickle.h"

namespace {

using lvs::io::TensorMap;

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Compares `written` with `original`: names, dtypes, shapes and bytes.
absl::Status Verify(const TensorMap& original, const std::string& out) {
  LVS_ASSIGN_OR_RETURN(TensorMap written, lvs::io::LoadSafetensors(out));
  if (written.size() != original.size()) {
    return absl::DataLossError(absl::StrCat(out, ": holds ", written.size(),
                                            " tensors, the input ",
                                            original.size()));
  }
  for (const auto& [name, want] : original) {
    auto it = written.find(name);
    if (it == written.end()) {
      return absl::DataLossError(
          absl::StrCat(out, ": tensor \"", name, "\" is missing"));
    }
    const torch::Tensor& got = it->second;
    const torch::Tensor w = want.contiguous();
    if (got.scalar_type() != w.scalar_type() || got.sizes() != w.sizes() ||
        std::memcmp(got.data_ptr(), w.data_ptr(), w.nbytes()) != 0) {
      return absl::DataLossError(
          absl::StrCat(out, ": tensor \"", name, "\" differs from the input"));
    }
  }
  return absl::OkStatus();
}

absl::Status Convert(const std::string& in, const std::string& out,
                     const std::string& model_args, bool verify) {
  const auto start = std::chrono::steady_clock::now();
  LVS_ASSIGN_OR_RETURN(TensorMap tensors, lvs::io::LoadCheckpoint(in));
  LVS_RETURN_IF_ERROR(
      lvs::io::SaveSafetensors(out, tensors, {{"format", "pt"}}));
  int64_t bytes = 0;
  for (const auto& [name, t] : tensors) bytes += t.nbytes();
  if (!model_args.empty()) {
    LVS_ASSIGN_OR_RETURN(nlohmann::json args,
                         lvs::io::ReadPickledArgs(model_args));
    const std::string text = args.dump(2) + "\n";
    const std::string config = DirName(out) + "/config.json";
    LVS_RETURN_IF_ERROR(
        lvs::io::WriteFileAtomically(config, text.data(), text.size()));
    std::printf("wrote %s (%zu fields)\n", config.c_str(), args.size());
  }
  if (verify) {
    LVS_RETURN_IF_ERROR(Verify(tensors, out));
    std::printf("verified %s\n", out.c_str());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::printf("wrote %s: %zu tensors, %.1f MB in %.3f s\n", out.c_str(),
              tensors.size(), bytes / 1e6, seconds);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  // Before any BLAS call or thread: may re-execute the program.
  lvs::common::EnsureOpenBlasCore(argv);
  lvs::common::LogBlasWarnings();
  CLI::App app{
      "lvs-convert: checkpoint (.pth/.pt/.bin, safetensors) to "
      "safetensors, never executing pickled code"};
  std::string in, out, model_args;
  bool verify = false;
  app.add_option("IN", in, "Input checkpoint")->required();
  app.add_option("OUT", out, "Output .safetensors file")->required();
  app.add_option("--model-args", model_args,
                 "model_args.pth to write as config.json beside OUT");
  app.add_flag("--verify", verify, "Re-read OUT and compare with IN");
  LVS_CLI_PARSE(app, argc, argv);
  absl::Status s = Convert(in, out, model_args, verify);
  if (!s.ok()) {
    std::fprintf(stderr, "lvs-convert: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
