// lvs-synth: writes synthetic captioned clips (synth.h) and the item lists
// lvs-extract and lvs-motion read:
//   OUT/clips/{train,heldout}-NNNNN.mp4, OUT/train.jsonl, OUT/heldout.jsonl
// Deterministic for --seed; existing clips are rewritten.
//
// Usage: lvs-synth --out=DIR [--seed=0] [--train=512] [--heldout=64]
//                  [--size=128] [--frames=17] [--fps=8]
#include <cstdio>
#include <filesystem>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "common/cli_parse.h"
#include "tools/lvs_extract/item_list.h"
#include "tools/lvs_synth/synth.h"

namespace {

int WriteSplit(const std::string& out, const std::string& split, int64_t count,
               uint64_t seed, const lvs::synth::SynthOptions& options) {
  lvs::tools::ToolProgress progress(stderr, count);
  std::vector<nlohmann::json> records;
  for (int64_t i = 0; i < count; ++i) {
    const std::string rel = absl::StrFormat("clips/%s-%05d.mp4", split, i);
    const lvs::synth::ClipSpec clip =
        lvs::synth::SampleClip(seed, split, i, options);
    absl::Status s = lvs::synth::WriteClip(clip, options, out + "/" + rel);
    if (!s.ok()) {
      progress.Failed(rel, std::string(s.message()));
      continue;
    }
    records.push_back(lvs::synth::ClipRecord(clip, rel, split));
    progress.Done(rel);
  }
  progress.Finish();
  if (absl::Status s =
          lvs::tools::WriteJsonl(out + "/" + split + ".jsonl", records);
      !s.ok()) {
    std::fprintf(stderr, "lvs-synth: %s\n", s.ToString().c_str());
    return 1;
  }
  return progress.failed() > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lvs-synth: synthetic captioned clips (shapes in motion)"};
  std::string out;
  uint64_t seed = 0;
  int64_t train = 512, heldout = 64;
  lvs::synth::SynthOptions options;
  app.add_option("--out", out, "output directory")->required();
  app.add_option("--seed", seed, "data set seed");
  app.add_option("--train", train, "clips of the train split")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--heldout", heldout,
                 "clips of the held-out split (unseen combinations)")
      ->check(CLI::NonNegativeNumber);
  int size = 128;
  app.add_option("--size", size, "width and height in pixels (>= 32, even)")
      ->check(CLI::Range(32, 1024));
  app.add_option("--frames", options.frames, "frames per clip")
      ->check(CLI::Range(2, 1000));
  app.add_option("--fps", options.fps, "frame rate")->check(CLI::Range(1, 120));
  LVS_CLI_PARSE(app, argc, argv);
  if (size % 2 != 0) {
    std::fprintf(stderr, "lvs-synth: --size must be even, got %d\n", size);
    return 2;
  }
  options.width = options.height = size;
  std::error_code ec;
  std::filesystem::create_directories(out + "/clips", ec);
  if (ec) {
    std::fprintf(stderr, "lvs-synth: cannot create %s/clips: %s\n", out.c_str(),
                 ec.message().c_str());
    return 1;
  }
  int rc = WriteSplit(out, "train", train, seed, options);
  rc = std::max(rc, WriteSplit(out, "heldout", heldout, seed, options));
  return rc;
}
