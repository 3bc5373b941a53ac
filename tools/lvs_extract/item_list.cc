// Item lists, JSONL records and the data tools' progress line.
#include "tools/lvs_extract/item_list.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "model/io/safetensors.h"

namespace lvs::tools {

absl::StatusOr<std::vector<nlohmann::json>> ReadItems(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, " cannot be read"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::vector<nlohmann::json> items;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    nlohmann::json all = nlohmann::json::parse(text, nullptr, false);
    if (all.is_discarded() || !all.is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": not a JSON array"));
    }
    for (size_t i = 0; i < all.size(); ++i) {
      if (!all[i].is_object()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": item ", i, " is not an object"));
      }
      items.push_back(all[i]);
    }
    return items;
  }
  std::istringstream lines(text);
  std::string line;
  for (int n = 1; std::getline(lines, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": line ", n, " is not a JSON object"));
    }
    items.push_back(std::move(j));
  }
  return items;
}

absl::Status WriteJsonl(const std::string& path,
                        const std::vector<nlohmann::json>& records) {
  std::string text;
  for (const nlohmann::json& r : records) text += r.dump() + "\n";
  return io::WriteFileAtomically(path, text.data(), text.size());
}

std::string ResolvePath(const std::string& list_file, const std::string& path) {
  const std::filesystem::path p(path);
  if (p.is_absolute()) return path;
  return (std::filesystem::path(list_file).parent_path() / p).string();
}

ToolProgress::ToolProgress(std::FILE* out, int64_t total)
    : out_(out), tty_(::isatty(::fileno(out)) != 0), total_(total) {}

void ToolProgress::Draw(const std::string& item) {
  const int64_t n = done_ + skipped_ + failed_;
  const int width = 30;
  const int filled = total_ > 0 ? static_cast<int>(width * n / total_) : width;
  const std::string bar =
      std::string(filled, '#') + std::string(width - filled, '.');
  std::fprintf(out_, "%s[%s] %lld/%lld done %lld skipped %lld failed %lld %s%s",
               tty_ ? "\r\033[K" : "", bar.c_str(), static_cast<long long>(n),
               static_cast<long long>(total_), static_cast<long long>(done_),
               static_cast<long long>(skipped_),
               static_cast<long long>(failed_), item.c_str(), tty_ ? "" : "\n");
  std::fflush(out_);
}

void ToolProgress::Done(const std::string& item) {
  ++done_;
  Draw(item);
}

void ToolProgress::Skipped(const std::string& item, const std::string& reason) {
  ++skipped_;
  ++skip_reasons_[reason];
  Draw(absl::StrCat(item, " (skipped: ", reason, ")"));
}

void ToolProgress::Failed(const std::string& item, const std::string& error) {
  ++failed_;
  failures_.push_back(absl::StrCat(item, ": ", error));
  Draw(absl::StrCat(item, " (failed)"));
}

std::string ToolProgress::Finish() {
  std::string s =
      absl::StrCat("summary: ", done_, " done, ", skipped_, " skipped, ",
                   failed_, " failed of ", total_, "\n");
  for (const auto& [reason, count] : skip_reasons_) {
    absl::StrAppend(&s, "  skipped ", count, ": ", reason, "\n");
  }
  for (const std::string& f : failures_)
    absl::StrAppend(&s, "  failed ", f, "\n");
  std::fprintf(out_, "%s%s", tty_ ? "\n" : "", s.c_str());
  std::fflush(out_);
  return s;
}

}  // namespace lvs::tools
