// `lvs-model bench-video`: one whole video at the real shapes with random
// weights (2B DiT, Gemma-2-2B, CogVideoX-2b VAE), per stage and per DiT
// patch phase, DiT MFU and peak memory; one table and a JSON file
// (scripts/gpu-bench).
//
// Thread-safety: a single-threaded command-line program.
#ifndef LVS_TOOLS_LVS_MODEL_BENCH_VIDEO_H_
#define LVS_TOOLS_LVS_MODEL_BENCH_VIDEO_H_

#include "CLI/CLI.hpp"

namespace lvs::pipeline {

// Adds the `bench-video` subcommand to `app`.
void AddBenchVideoCommand(CLI::App& app);

}  // namespace lvs::pipeline

#endif  // LVS_TOOLS_LVS_MODEL_BENCH_VIDEO_H_
