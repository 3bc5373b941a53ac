// Item lists and records of the data tools (lvs-extract, lvs-motion):
// reading a JSON array or JSONL file of items, writing JSONL atomically,
// and the progress line and final summary both tools print.
//
// Torch-free. Thread-safety: ToolProgress is used by one thread; the other
// functions are pure or touch only their files.
#ifndef LVS_TOOLS_LVS_EXTRACT_ITEM_LIST_H_
#define LVS_TOOLS_LVS_EXTRACT_ITEM_LIST_H_

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace lvs::tools {

// Reads `path`: a JSON array of objects, or JSONL (one object per line).
// Errors name the file and line.
absl::StatusOr<std::vector<nlohmann::json>> ReadItems(const std::string& path);

// Writes one JSON object per line to `path` atomically.
absl::Status WriteJsonl(const std::string& path,
                        const std::vector<nlohmann::json>& records);

// Resolves an item's `path` against the directory of the list file when it
// is relative.
std::string ResolvePath(const std::string& list_file, const std::string& path);

// Progress line and summary: items done, skipped (with reasons) and failed.
class ToolProgress {
 public:
  // Draws to `out` (not owned); in place when it is a terminal.
  ToolProgress(std::FILE* out, int64_t total);

  // Counts an item as done, skipped (reason) or failed (error).
  void Done(const std::string& item);
  void Skipped(const std::string& item, const std::string& reason);
  void Failed(const std::string& item, const std::string& error);

  // Prints the final summary; returns it too.
  std::string Finish();

  int64_t done() const { return done_; }
  int64_t skipped() const { return skipped_; }
  int64_t failed() const { return failed_; }

 private:
  void Draw(const std::string& item);

  std::FILE* out_;
  bool tty_;
  int64_t total_;
  int64_t done_ = 0, skipped_ = 0, failed_ = 0;
  std::map<std::string, int64_t> skip_reasons_;
  std::vector<std::string> failures_;
};

}  // namespace lvs::tools

#endif  // LVS_TOOLS_LVS_EXTRACT_ITEM_LIST_H_
