#include "model/io/sharded_checkpoint.h"

#include <dirent.h>
#include <sys/stat.h>

#include <set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "model/io/mapped_file.h"
#include "nlohmann/json.hpp"

namespace lvs::io {
namespace {

using json = nlohmann::json;

absl::Status Bad(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": invalid shard index: ", what));
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// A shard name must stay inside the index's directory.
bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

// Parses `text`, rejecting objects that repeat a key (nlohmann::json would
// silently keep the last one, hiding a tensor mapped to two shards).
absl::StatusOr<json> ParseJsonNoDuplicateKeys(absl::string_view text,
                                              const std::string& path) {
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  json::parser_callback_t cb = [&](int, json::parse_event_t event,
                                   json& parsed) {
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    if (event == json::parse_event_t::object_end && !keys.empty()) {
      keys.pop_back();
    }
    if (event == json::parse_event_t::key && !keys.empty() &&
        !keys.back().insert(parsed.get<std::string>()).second &&
        duplicate.empty()) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  json doc = json::parse(text.begin(), text.end(), cb,
                         /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Bad(path, "not valid JSON");
  if (!duplicate.empty()) {
    return Bad(path, absl::StrCat("key \"", duplicate, "\" appears twice"));
  }
  return doc;
}

}  // namespace

absl::StatusOr<ShardIndex> ParseShardIndexText(absl::string_view text,
                                               const std::string& index_path) {
  LVS_ASSIGN_OR_RETURN(json doc, ParseJsonNoDuplicateKeys(text, index_path));
  if (!doc.is_object()) return Bad(index_path, "not a JSON object");
  auto wm = doc.find("weight_map");
  if (wm == doc.end() || !wm->is_object()) {
    return Bad(index_path, "missing \"weight_map\" object");
  }
  if (wm->empty()) return Bad(index_path, "\"weight_map\" is empty");
  ShardIndex index;
  index.index_path = index_path;
  index.dir = DirName(index_path);
  std::set<std::string> shards;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it->is_string()) {
      return Bad(index_path, absl::StrCat("weight_map[\"", it.key(),
                                          "\"] is not a file name"));
    }
    std::string shard = it->get<std::string>();
    if (!IsPlainFileName(shard)) {
      return Bad(index_path,
                 absl::StrCat("weight_map[\"", it.key(), "\"] = \"", shard,
                              "\" is not a file name in the index's folder"));
    }
    index.weight_map.emplace(it.key(), shard);
    shards.insert(shard);
  }
  index.shards.assign(shards.begin(), shards.end());
  return index;
}

absl::StatusOr<ShardIndex> ParseShardIndex(const std::string& index_path) {
  LVS_ASSIGN_OR_RETURN(std::shared_ptr<const ByteSource> bytes,
                       MapFile(index_path));
  LVS_ASSIGN_OR_RETURN(
      ShardIndex index,
      ParseShardIndexText(
          absl::string_view(reinterpret_cast<const char*>(bytes->data()),
                            bytes->size()),
          index_path));
  std::vector<std::string> absent;
  for (const std::string& shard : index.shards) {
    if (!IsRegularFile(absl::StrCat(index.dir, "/", shard))) {
      absent.push_back(shard);
    }
  }
  if (!absent.empty()) {
    return absl::NotFoundError(
        absl::StrCat(index_path,
                     ": shard files named in weight_map do not "
                     "exist in ",
                     index.dir, ": ", absl::StrJoin(absent, ", ")));
  }
  return index;
}

absl::StatusOr<std::string> FindShardIndex(
    const std::string& dir_or_index_path) {
  if (!IsDirectory(dir_or_index_path)) {
    if (IsRegularFile(dir_or_index_path)) return dir_or_index_path;
    return absl::NotFoundError(
        absl::StrCat(dir_or_index_path, ": no such file or directory"));
  }
  std::string standard = absl::StrCat(dir_or_index_path, "/", kShardIndexName);
  if (IsRegularFile(standard)) return standard;
  std::vector<std::string> found;
  if (DIR* d = opendir(dir_or_index_path.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (absl::EndsWith(name, ".safetensors.index.json")) {
        found.push_back(name);
      }
    }
    closedir(d);
  }
  if (found.size() != 1) {
    return absl::NotFoundError(absl::StrCat(
        dir_or_index_path, ": expected one *.safetensors.index.json, found ",
        found.size(),
        found.empty() ? ""
                      : absl::StrCat(" (", absl::StrJoin(found, ", "), ")")));
  }
  return absl::StrCat(dir_or_index_path, "/", found[0]);
}

absl::StatusOr<std::vector<std::shared_ptr<const SafetensorsFile>>> OpenShards(
    const ShardIndex& index) {
  std::vector<std::shared_ptr<const SafetensorsFile>> files;
  std::map<std::string, std::vector<std::string>> expected;  // shard -> keys
  for (const auto& [key, shard] : index.weight_map) {
    expected[shard].push_back(key);
  }
  std::vector<std::string> problems;
  for (const std::string& shard : index.shards) {
    const std::string path = absl::StrCat(index.dir, "/", shard);
    LVS_ASSIGN_OR_RETURN(std::shared_ptr<const SafetensorsFile> file,
                         SafetensorsFile::Open(path));
    for (const TensorRecord& rec : file->tensors()) {
      auto it = index.weight_map.find(rec.name);
      if (it == index.weight_map.end()) {
        problems.push_back(absl::StrCat("\"", rec.name, "\" is in ", shard,
                                        " but not in weight_map"));
      } else if (it->second != shard) {
        problems.push_back(absl::StrCat("\"", rec.name, "\" is in ", shard,
                                        " but weight_map maps it to ",
                                        it->second));
      }
    }
    for (const std::string& key : expected[shard]) {
      if (file->Find(key) == nullptr) {
        problems.push_back(absl::StrCat("\"", key, "\" is mapped to ", shard,
                                        " but that file does not hold it"));
      }
    }
    files.push_back(std::move(file));
  }
  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        index.index_path,
        ": shards disagree with weight_map: ", absl::StrJoin(problems, "; ")));
  }
  return files;
}

}  // namespace lvs::io
