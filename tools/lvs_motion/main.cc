// lvs-motion: writes the motion score (`unimatch_flow`) of every record of a
// JSON/JSONL list (lvs-extract's records or raw items with `path`) into a
// JSONL output. Resumable: records of an existing output that already carry
// a score are kept. See motion_score.h for the OpenCV substitution.
//
// Usage: lvs-motion --records=IN.jsonl --out=OUT.jsonl [--method=dis]
#include <cstdio>
#include <filesystem>
#include <map>

#include "CLI/CLI.hpp"
#include "common/cli_parse.h"
#include "model/common/blas_check.h"
#include "tools/lvs_extract/item_list.h"
#include "tools/lvs_motion/motion_score.h"

namespace {

int Run(const std::string& records_path, const std::string& out_path,
        const std::string& method) {
  lvs::motion::MotionOptions options;
  options.method = method == "farneback" ? lvs::motion::FlowMethod::kFarneback
                                         : lvs::motion::FlowMethod::kDis;
  absl::StatusOr<std::vector<nlohmann::json>> items =
      lvs::tools::ReadItems(records_path);
  if (!items.ok()) {
    std::fprintf(stderr, "lvs-motion: %s\n", items.status().ToString().c_str());
    return 2;
  }
  std::map<std::string, double> previous;  // path -> score of a former run.
  if (std::filesystem::exists(out_path)) {
    absl::StatusOr<std::vector<nlohmann::json>> old =
        lvs::tools::ReadItems(out_path);
    if (old.ok()) {
      for (const nlohmann::json& r : *old) {
        if (r.contains("unimatch_flow") && r.contains("path")) {
          previous[r["path"].dump()] = r["unimatch_flow"].get<double>();
        }
      }
    }
  }
  lvs::tools::ToolProgress progress(stderr, items->size());
  std::vector<nlohmann::json> out;
  for (nlohmann::json item : *items) {
    const std::string path = item.value("path", std::string());
    if (path.empty()) {
      progress.Skipped("(no path)", "no path field");
      continue;
    }
    auto it = previous.find(item["path"].dump());
    if (it != previous.end()) {
      item["unimatch_flow"] = it->second;
      out.push_back(item);
      progress.Skipped(path, "scored by an earlier run");
      continue;
    }
    absl::StatusOr<double> score = lvs::motion::MotionScoreOfFile(
        lvs::tools::ResolvePath(records_path, path), options);
    if (!score.ok()) {
      progress.Failed(path, std::string(score.status().message()));
      continue;
    }
    item["unimatch_flow"] = *score;
    item["motion_method"] =
        method == "farneback" ? "opencv-farneback" : "opencv-dis";
    out.push_back(item);
    progress.Done(path);
    if (out.size() % 16 == 0) (void)lvs::tools::WriteJsonl(out_path, out);
  }
  if (absl::Status s = lvs::tools::WriteJsonl(out_path, out); !s.ok()) {
    std::fprintf(stderr, "lvs-motion: %s\n", s.ToString().c_str());
    return 1;
  }
  progress.Finish();
  return progress.failed() > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any BLAS call or thread: may re-execute the program.
  lvs::common::EnsureOpenBlasCore(argv);
  CLI::App app{"lvs-motion: motion scores (OpenCV optical flow) of clips"};
  std::string records, out, method = "dis";
  app.add_option("--records", records, "JSON or JSONL list of items")
      ->required();
  app.add_option("--out", out, "output JSONL (the records with scores)")
      ->required();
  app.add_option("--method", method, "dis or farneback")
      ->check(CLI::IsMember({"dis", "farneback"}));
  LVS_CLI_PARSE(app, argc, argv);
  return Run(records, out, method);
}
