#include "model/io/torch_pickle.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace lvs::io {
namespace {

using Kind = PyValue::Kind;
using json = nlohmann::json;

constexpr size_t kMaxTensorDims = 64;

absl::Status Bad(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": invalid torch.save archive: ", what));
}

// Appends every tensor under `v` (a dict) to `out` with dotted names.
void CollectTensors(const PyValue& v, const std::string& prefix,
                    std::vector<std::pair<std::string, const PyValue*>>* out) {
  for (const auto& [k, value] : v.entries) {
    if (k->kind != Kind::kStr) continue;
    const std::string name = prefix.empty() ? k->str : prefix + "." + k->str;
    if (value->kind == Kind::kTensor) out->emplace_back(name, value);
    if (value->kind == Kind::kDict) CollectTensors(*value, name, out);
  }
}

// Registers the storage of tensor `name`, checking its archive entry.
absl::Status AddStorage(const ZipArchive& zip, const std::string& prefix,
                        const PyValue& s, const std::string& name,
                        std::map<std::string, StorageSpec>* storages) {
  auto it = storages->find(s.str);
  if (it != storages->end()) {
    if (it->second.dtype != s.dtype || it->second.numel != s.i) {
      return Bad(zip.path(),
                 absl::StrCat("storage \"", s.str,
                              "\" is declared twice with "
                              "different dtypes or sizes (tensor \"",
                              name, "\")"));
    }
    return absl::OkStatus();
  }
  const std::string entry_name = absl::StrCat(prefix, "data/", s.str);
  const ZipEntry* entry = zip.Find(entry_name);
  if (entry == nullptr) {
    return Bad(zip.path(),
               absl::StrCat("tensor \"", name, "\": storage entry \"",
                            entry_name, "\" is missing"));
  }
  const uint64_t esize = DTypeSize(s.dtype);
  const uint64_t numel = static_cast<uint64_t>(s.i);
  if (numel > UINT64_MAX / esize || numel * esize != entry->size) {
    return Bad(zip.path(),
               absl::StrCat("bad entry size: entry \"", entry_name, "\" has ",
                            entry->size, " bytes but its storage holds ", s.i,
                            " ", DTypeName(s.dtype), " elements"));
  }
  StorageSpec spec;
  spec.key = s.str;
  spec.dtype = s.dtype;
  spec.numel = s.i;
  spec.location = s.location;
  spec.entry = entry;
  storages->emplace(s.str, std::move(spec));
  return absl::OkStatus();
}

// Checks that every element the view reaches lies inside the storage.
absl::Status CheckExtent(const std::string& path, const TensorSpec& t,
                         int64_t storage_numel) {
  if (t.sizes.size() > kMaxTensorDims) {
    return Bad(path, absl::StrCat("tensor \"", t.name, "\" has ",
                                  t.sizes.size(), " dimensions"));
  }
  uint64_t last = static_cast<uint64_t>(t.storage_offset);
  bool empty = false, overflow = false;
  for (size_t d = 0; d < t.sizes.size(); ++d) {
    if (t.sizes[d] == 0) empty = true;
    uint64_t step = 0;
    overflow |= __builtin_mul_overflow(
        static_cast<uint64_t>(t.sizes[d] == 0 ? 0 : t.sizes[d] - 1),
        static_cast<uint64_t>(t.strides[d]), &step);
    overflow |= __builtin_add_overflow(last, step, &last);
  }
  if (empty) return absl::OkStatus();
  if (overflow || last >= static_cast<uint64_t>(storage_numel)) {
    return Bad(
        path, absl::StrCat("tensor \"", t.name, "\" (offset ", t.storage_offset,
                           ", size [", absl::StrJoin(t.sizes, ","),
                           "], stride [", absl::StrJoin(t.strides, ","),
                           "]) reaches past its storage \"", t.storage_key,
                           "\" of ", storage_numel, " elements"));
  }
  return absl::OkStatus();
}

absl::StatusOr<json> ToJson(const PyValue& v, const std::string& field,
                            const std::string& source) {
  switch (v.kind) {
    case Kind::kNone:
      return json(nullptr);
    case Kind::kBool:
      return json(v.b);
    case Kind::kInt:
      return json(v.i);
    case Kind::kFloat:
      return json(v.f);
    case Kind::kStr:
      return json(v.str);
    case Kind::kTuple:
    case Kind::kList:
    case Kind::kSet: {
      json arr = json::array();
      for (size_t k = 0; k < v.items.size(); ++k) {
        LVS_ASSIGN_OR_RETURN(
            json item,
            ToJson(*v.items[k], absl::StrCat(field, "[", k, "]"), source));
        arr.push_back(std::move(item));
      }
      return arr;
    }
    case Kind::kDict:
    case Kind::kNamespace: {
      json obj = json::object();
      for (const auto& [k, value] : v.entries) {
        if (k->kind != Kind::kStr) {
          return absl::InvalidArgumentError(absl::StrCat(
              source, ": field \"", field, "\" has a non-string key"));
        }
        const std::string sub = field.empty() ? k->str : field + "." + k->str;
        LVS_ASSIGN_OR_RETURN(obj[k->str], ToJson(*value, sub, source));
      }
      return obj;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": field \"", field, "\" holds a ",
                       PyKindName(v.kind), ", not a plain value"));
  }
}

}  // namespace

absl::StatusOr<PickleResult> ReadArchivePickle(const ZipArchive& zip,
                                               std::string* prefix) {
  std::vector<const ZipEntry*> pickles;
  for (const ZipEntry& e : zip.entries()) {
    if (e.name == "data.pkl" || absl::EndsWith(e.name, "/data.pkl")) {
      pickles.push_back(&e);
    }
  }
  if (pickles.size() != 1) {
    return Bad(zip.path(), absl::StrCat("expected one <name>/data.pkl record, "
                                        "found ",
                                        pickles.size()));
  }
  const ZipEntry& pkl = *pickles[0];
  const std::string pre = pkl.name.substr(0, pkl.name.size() - 8);
  if (const ZipEntry* order = zip.Find(pre + "byteorder")) {
    const std::string bo(reinterpret_cast<const char*>(zip.data(*order)),
                         order->size);
    if (bo != "little") {
      return Bad(zip.path(), absl::StrCat("byteorder \"", bo,
                                          "\" unsupported (little only)"));
    }
  }
  LVS_RETURN_IF_ERROR(zip.VerifyCrc(pkl));
  if (prefix != nullptr) *prefix = pre;
  return Unpickle(
      absl::string_view(reinterpret_cast<const char*>(zip.data(pkl)), pkl.size),
      absl::StrCat(zip.path(), ": ", pkl.name));
}

absl::StatusOr<TorchArchive> ParseTorchArchive(
    std::shared_ptr<const ZipArchive> zip) {
  TorchArchive archive;
  LVS_ASSIGN_OR_RETURN(PickleResult pickle,
                       ReadArchivePickle(*zip, &archive.prefix));
  const std::string& path = zip->path();
  if (pickle.root().kind != Kind::kDict) {
    return Bad(path, absl::StrCat("the pickle holds a ",
                                  PyKindName(pickle.root().kind),
                                  ", not a state dict"));
  }
  std::vector<std::pair<std::string, const PyValue*>> found;
  CollectTensors(pickle.root(), "", &found);
  std::set<std::string> names;
  for (const auto& [name, t] : found) {
    if (!names.insert(name).second) {
      return Bad(path, absl::StrCat("tensor \"", name, "\" appears twice"));
    }
    const PyValue& s = *t->items[0];
    LVS_RETURN_IF_ERROR(
        AddStorage(*zip, archive.prefix, s, name, &archive.storages));
    TensorSpec spec;
    spec.name = name;
    spec.storage_key = s.str;
    spec.dtype = s.dtype;
    spec.storage_offset = t->i;
    spec.sizes = t->sizes;
    spec.strides = t->strides;
    LVS_RETURN_IF_ERROR(CheckExtent(path, spec, s.i));
    archive.tensors.push_back(std::move(spec));
  }
  archive.zip = std::move(zip);
  return archive;
}

absl::StatusOr<TorchArchive> OpenTorchArchive(const std::string& path) {
  LVS_ASSIGN_OR_RETURN(std::shared_ptr<const ZipArchive> zip,
                       ZipArchive::Open(path));
  return ParseTorchArchive(std::move(zip));
}

absl::StatusOr<json> PickledArgsToJson(const PyValue& root,
                                       const std::string& source) {
  if (root.kind != Kind::kNamespace && root.kind != Kind::kDict) {
    return absl::InvalidArgumentError(
        absl::StrCat(source,
                     ": expected a pickled argparse.Namespace, "
                     "types.SimpleNamespace or dict, found a ",
                     PyKindName(root.kind)));
  }
  return ToJson(root, "", source);
}

absl::StatusOr<json> ReadPickledArgs(const std::string& path) {
  LVS_ASSIGN_OR_RETURN(std::shared_ptr<const ZipArchive> zip,
                       ZipArchive::Open(path));
  LVS_ASSIGN_OR_RETURN(PickleResult pickle, ReadArchivePickle(*zip, nullptr));
  return PickledArgsToJson(pickle.root(), path);
}

}  // namespace lvs::io
