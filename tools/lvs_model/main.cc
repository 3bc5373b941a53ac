// lvs-model: offline tools around the model code.
//
//   lvs-model [--threads N] conform --golden DIR --out OUT [--only a,b]
//   [--check] lvs-model generate --dit DIR --text-encoder DIR --vae DIR
//   --prompt "..."
//       --resolution WxH --frames N --fps N --sample-config NAME --steps N
//       --seed N [--precision bf16|fp32] [--device cpu|cuda[:N]] -o out.mp4
//   lvs-model init-text-encoder --config C --tokenizer T --out DIR [--seed N]
//
// Thread-safety: a single-threaded command-line program.
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_split.h"
#include "model/common/blas_check.h"
#include "model/common/cpu_runtime.h"
#include "tools/lvs_model/conform.h"
#if LVS_MODEL_WITH_GENERATE
#include "tools/lvs_model/generate.h"
#endif
#if LVS_MODEL_WITH_BENCH_VIDEO
#include "tools/lvs_model/bench_video.h"
#endif
#if LVS_MODEL_WITH_INIT_TEXT_ENCODER
#include "tools/lvs_model/init_text_encoder.h"
#endif

int main(int argc, char** argv) {
  // Before any BLAS call or thread: may re-execute the program.
  lvs::common::EnsureOpenBlasCore(argv);
  lvs::common::LogBlasWarnings();
  CLI::App app{"lvs-model: offline Lumina-Video generation and conformance"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads,
                 "LibTorch intra-op CPU threads (0: all usable cores)")
      ->check(CLI::NonNegativeNumber);
  // Runs after parsing, before the subcommand's callback.
  app.parse_complete_callback([&] {
    lvs::common::ConfigureCpuThreads(threads);
    std::fprintf(stderr, "lvs-model: cpu: %s\n",
                 lvs::common::CpuRuntimeSummary().c_str());
  });

  lvs::conform::ConformOptions conform;
  std::string only;
  CLI::App* cmd = app.add_subcommand(
      "conform", "Reproduce golden vector files from their inputs");
  cmd->add_option("--golden", conform.golden_dir,
                  "Golden directory (dit/, text_encoder/, vae/, vectors/)")
      ->required();
  cmd->add_option("--out", conform.out_dir, "Output directory")->required();
  cmd->add_option("--only", only, "Comma-separated vector file stems");
  cmd->add_flag("--check", conform.check,
                "Compare with the golden tolerances; exit 1 on a failure");
  std::string device = "cpu";
  cmd->add_option("--device", device, "cpu or cuda[:N]");
  cmd->callback([&] {
    if (!only.empty()) {
      conform.only = absl::StrSplit(only, ',', absl::SkipEmpty());
    }
    try {
      conform.device = torch::Device(device);
    } catch (const c10::Error& e) {
      std::fprintf(stderr, "lvs-model conform: --device: %s\n",
                   e.what_without_backtrace());
      throw CLI::RuntimeError(2);
    }
    absl::Status s = lvs::conform::RunConform(conform);
    if (!s.ok()) {
      std::fprintf(stderr, "lvs-model conform: %s\n",
                   std::string(s.message()).c_str());
      throw CLI::RuntimeError(1);
    }
  });

#if LVS_MODEL_WITH_GENERATE
  lvs::generate::AddGenerateCommand(app);
#endif
#if LVS_MODEL_WITH_INIT_TEXT_ENCODER
  lvs::init_text_encoder::AddInitTextEncoderCommand(app);
#endif
#if LVS_MODEL_WITH_BENCH_VIDEO
  lvs::pipeline::AddBenchVideoCommand(app);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::RuntimeError& e) {  // A command's own exit status.
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;  // A usage error.
  }
  return 0;
}
