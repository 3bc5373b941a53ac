// `lvs-model generate`: offline, in-process prompt -> MP4 with the
// Lumina-Video pipeline (model/pipeline), a progress bar (steps, it/s, ETA)
// and a summary (time and peak memory per stage).
//
// Thread-safety: a single-threaded command-line program.
#ifndef LVS_TOOLS_LVS_MODEL_GENERATE_H_
#define LVS_TOOLS_LVS_MODEL_GENERATE_H_

#include "CLI/CLI.hpp"

namespace lvs::generate {

// Adds the `generate` subcommand to `app`; its callback runs the job and
// throws CLI::RuntimeError with exit code 1 (failure) or 2 (bad flags).
void AddGenerateCommand(CLI::App& app);

}  // namespace lvs::generate

#endif  // LVS_TOOLS_LVS_MODEL_GENERATE_H_
