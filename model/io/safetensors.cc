#include "model/io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace lvs::io {
namespace {

using json = nlohmann::json;

absl::Status Bad(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": invalid safetensors: ", what));
}

uint64_t ReadU64LE(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Parses one tensor entry of the header into `rec` (data pointer unset).
absl::Status ParseEntry(const std::string& path, const std::string& name,
                        const json& entry, uint64_t data_size,
                        TensorRecord* rec, uint64_t* begin) {
  auto bad = [&](absl::string_view what) {
    return Bad(path, absl::StrCat("tensor \"", name, "\": ", what));
  };
  if (!entry.is_object()) return bad("entry is not an object");
  for (auto it = entry.begin(); it != entry.end(); ++it) {
    if (it.key() != "dtype" && it.key() != "shape" &&
        it.key() != "data_offsets") {
      return bad(absl::StrCat("unknown field \"", it.key(), "\""));
    }
  }
  auto dt = entry.find("dtype");
  if (dt == entry.end() || !dt->is_string()) return bad("missing dtype");
  absl::StatusOr<DType> dtype = ParseDType(dt->get<std::string>());
  if (!dtype.ok()) return bad(dtype.status().message());
  auto sh = entry.find("shape");
  if (sh == entry.end() || !sh->is_array()) return bad("missing shape");
  if (sh->size() > 16) return bad("more than 16 dimensions");
  uint64_t numel = 1;
  bool overflow = false;
  std::vector<int64_t> shape;
  for (const json& d : *sh) {
    if (!d.is_number_unsigned()) return bad("shape entries must be >= 0");
    uint64_t v = d.get<uint64_t>();
    if (v > (uint64_t{1} << 62)) return bad("dimension too large");
    if (v != 0 && numel > UINT64_MAX / v) overflow = true;
    numel *= v;
    shape.push_back(static_cast<int64_t>(v));
  }
  uint64_t esize = DTypeSize(*dtype);
  if (overflow || (numel != 0 && numel > UINT64_MAX / esize)) {
    return bad("shape x dtype size overflows");
  }
  auto off = entry.find("data_offsets");
  if (off == entry.end() || !off->is_array() || off->size() != 2 ||
      !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned()) {
    return bad("data_offsets must be two non-negative integers");
  }
  uint64_t b = (*off)[0].get<uint64_t>(), e = (*off)[1].get<uint64_t>();
  if (b > e) return bad("data_offsets begin > end");
  if (e > data_size) {
    return bad(absl::StrCat("data_offsets end ", e, " past the data section (",
                            data_size, " bytes)"));
  }
  if (e - b != numel * esize) {
    return bad(absl::StrCat("byte length ", e - b, " != shape x dtype size ",
                            numel * esize));
  }
  rec->name = name;
  rec->dtype = *dtype;
  rec->shape = std::move(shape);
  rec->nbytes = e - b;
  *begin = b;
  return absl::OkStatus();
}

}  // namespace

int64_t TensorRecord::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::StatusOr<std::shared_ptr<const SafetensorsFile>> SafetensorsFile::Open(
    const std::string& path) {
  LVS_ASSIGN_OR_RETURN(std::shared_ptr<const ByteSource> source, MapFile(path));
  return Parse(std::move(source));
}

absl::StatusOr<std::shared_ptr<const SafetensorsFile>> SafetensorsFile::Parse(
    std::shared_ptr<const ByteSource> source) {
  const std::string& path = source->path();
  const size_t size = source->size();
  if (size < 8) return Bad(path, "file shorter than the 8-byte header length");
  const uint64_t n = ReadU64LE(source->data());
  if (n > kMaxSafetensorsHeaderBytes) {
    return Bad(path, absl::StrCat("header length ", n, " exceeds the limit of ",
                                  kMaxSafetensorsHeaderBytes));
  }
  if (n > size - 8) {
    return Bad(path, absl::StrCat("header length ", n, " past the end of the ",
                                  size, "-byte file (truncated?)"));
  }
  const char* hbegin = reinterpret_cast<const char*>(source->data() + 8);
  json header =
      json::parse(hbegin, hbegin + n, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return Bad(path, "header is not valid JSON");
  if (!header.is_object()) return Bad(path, "header is not a JSON object");

  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  const uint8_t* data = source->data() + 8 + n;
  const uint64_t data_size = size - 8 - n;
  std::vector<std::pair<uint64_t, size_t>> order;  // (begin, record index)
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) return Bad(path, "__metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) {
          return Bad(path, absl::StrCat("__metadata__ value for \"", m.key(),
                                        "\" is not a string"));
        }
        file->metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    TensorRecord rec;
    uint64_t begin = 0;
    LVS_RETURN_IF_ERROR(
        ParseEntry(path, it.key(), *it, data_size, &rec, &begin));
    rec.data = data + begin;
    order.emplace_back(begin, file->tensors_.size());
    file->tensors_.push_back(std::move(rec));
  }
  // Ranges must tile the data section: sorted by begin, each starting where
  // the previous ended (zero-sized tensors may share an offset).
  std::sort(order.begin(), order.end());
  uint64_t expected = 0;
  std::vector<TensorRecord> sorted;
  sorted.reserve(order.size());
  for (const auto& [begin, idx] : order) {
    TensorRecord& rec = file->tensors_[idx];
    if (begin != expected) {
      return Bad(
          path, absl::StrCat("tensor \"", rec.name, "\" starts at ", begin,
                             begin < expected ? " and overlaps the previous one"
                                              : " leaving a hole at ",
                             begin < expected ? "" : absl::StrCat(expected)));
    }
    expected = begin + rec.nbytes;
    sorted.push_back(std::move(rec));
  }
  if (expected != data_size) {
    return Bad(path, absl::StrCat("data section has ", data_size - expected,
                                  " trailing bytes no tensor covers"));
  }
  file->tensors_ = std::move(sorted);
  for (size_t i = 0; i < file->tensors_.size(); ++i) {
    file->index_[file->tensors_[i].name] = i;
  }
  file->source_ = std::move(source);
  return std::shared_ptr<const SafetensorsFile>(std::move(file));
}

const TensorRecord* SafetensorsFile::Find(absl::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

absl::StatusOr<std::vector<uint8_t>> SerializeSafetensors(
    const std::vector<TensorToWrite>& tensors,
    const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    if (t.name == "__metadata__" || !seen.insert(t.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate or reserved tensor name \"", t.name, "\""));
    }
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor \"", t.name, "\": negative dimension"));
      }
      numel *= static_cast<uint64_t>(d);
    }
    if (numel * DTypeSize(t.dtype) != t.nbytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor \"", t.name, "\": ", t.nbytes, " bytes for a shape of ",
          numel, " ", DTypeName(t.dtype), " elements"));
    }
    header[t.name] = {{"dtype", std::string(DTypeName(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.nbytes}}};
    offset += t.nbytes;
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');
  std::vector<uint8_t> out(8 + text.size() + offset);
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, text.data(), text.size());
  uint8_t* p = out.data() + 8 + text.size();
  for (const TensorToWrite& t : tensors) {
    if (t.nbytes > 0) std::memcpy(p, t.data, t.nbytes);
    p += t.nbytes;
  }
  return out;
}

absl::Status WriteSafetensors(
    const std::string& path, const std::vector<TensorToWrite>& tensors,
    const std::map<std::string, std::string>& metadata) {
  LVS_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes,
                       SerializeSafetensors(tensors, metadata));
  return WriteFileAtomically(path, bytes.data(), bytes.size());
}

absl::Status WriteFileAtomically(const std::string& path, const void* bytes,
                                 size_t size) {
  std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat(tmp, ": cannot create: ", std::strerror(errno)));
  }
  const char* p = static_cast<const char*>(bytes);
  size_t left = size;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      absl::Status s = absl::InternalError(
          absl::StrCat(tmp, ": write failed: ", std::strerror(errno)));
      close(fd);
      unlink(tmp.c_str());
      return s;
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    unlink(tmp.c_str());
    return absl::InternalError(
        absl::StrCat(tmp, ": fsync/close failed: ", std::strerror(errno)));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return absl::InternalError(
        absl::StrCat(path, ": rename failed: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace lvs::io
