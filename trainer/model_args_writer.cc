// model_args.pth writer: a minimal pickler and zip writer.
#include "trainer/model_args_writer.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "model/io/safetensors.h"
#include "model/io/zip.h"

namespace lvs::trainer {
namespace {

void PutU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>(v >> 8));
}

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

// Appends a pickled str (BINUNICODE).
void PickleStr(std::string* out, const std::string& s) {
  out->push_back('X');
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

absl::Status PickleValue(std::string* out, const nlohmann::json& v,
                         const std::string& field) {
  switch (v.type()) {
    case nlohmann::json::value_t::null:
      out->push_back('N');
      return absl::OkStatus();
    case nlohmann::json::value_t::boolean:
      out->push_back(static_cast<char>(v.get<bool>() ? 0x88 : 0x89));
      return absl::OkStatus();
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: {
      const int64_t i = v.get<int64_t>();
      out->push_back(static_cast<char>(0x8a));  // LONG1: 8 little-endian.
      out->push_back(8);
      for (int b = 0; b < 8; ++b) {
        out->push_back(static_cast<char>(static_cast<uint64_t>(i) >> (8 * b)));
      }
      return absl::OkStatus();
    }
    case nlohmann::json::value_t::number_float: {
      const double d = v.get<double>();
      uint64_t bits;
      std::memcpy(&bits, &d, 8);
      out->push_back('G');  // BINFLOAT: 8 big-endian.
      for (int b = 7; b >= 0; --b)
        out->push_back(static_cast<char>(bits >> (8 * b)));
      return absl::OkStatus();
    }
    case nlohmann::json::value_t::string:
      PickleStr(out, v.get<std::string>());
      return absl::OkStatus();
    case nlohmann::json::value_t::array:
      out->push_back('(');
      for (size_t i = 0; i < v.size(); ++i) {
        if (absl::Status s =
                PickleValue(out, v[i], absl::StrCat(field, "[", i, "]"));
            !s.ok()) {
          return s;
        }
      }
      out->push_back('t');
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError(absl::StrCat("model_args field ", field,
                                                     " is not a plain value (",
                                                     v.type_name(), ")"));
  }
}

}  // namespace

absl::StatusOr<std::string> PickleNamespace(const nlohmann::json& args) {
  if (!args.is_object()) {
    return absl::InvalidArgumentError("model_args must be a JSON object");
  }
  std::string out = "\x80\x02";            // PROTO 2.
  out += "ctypes\nSimpleNamespace\n)R}(";  // GLOBAL, (), REDUCE, {}, MARK.
  for (const auto& [key, value] : args.items()) {
    PickleStr(&out, key);
    if (absl::Status s = PickleValue(&out, value, key); !s.ok()) return s;
  }
  out += "ub.";  // SETITEMS, BUILD, STOP.
  return out;
}

std::string TorchSaveArchive(const std::string& pickle) {
  struct Entry {
    std::string name, data;
    uint32_t offset = 0;
  };
  std::vector<Entry> entries = {{"archive/data.pkl", pickle},
                                {"archive/version", "3\n"}};
  std::string out;
  auto header_common = [](std::string* o, const Entry& e) {
    PutU16(o, 20);    // Version needed.
    PutU16(o, 0);     // Flags.
    PutU16(o, 0);     // Method: stored.
    PutU16(o, 0);     // Time.
    PutU16(o, 0x21);  // Date: 1980-01-01.
    PutU32(o, io::Crc32(reinterpret_cast<const uint8_t*>(e.data.data()),
                        e.data.size()));
    PutU32(o, static_cast<uint32_t>(e.data.size()));
    PutU32(o, static_cast<uint32_t>(e.data.size()));
    PutU16(o, static_cast<uint16_t>(e.name.size()));
    PutU16(o, 0);  // Extra length.
  };
  for (Entry& e : entries) {
    e.offset = static_cast<uint32_t>(out.size());
    PutU32(&out, 0x04034b50);
    header_common(&out, e);
    out += e.name;
    out += e.data;
  }
  const uint32_t cd_offset = static_cast<uint32_t>(out.size());
  for (const Entry& e : entries) {
    PutU32(&out, 0x02014b50);
    PutU16(&out, 20);  // Version made by.
    header_common(&out, e);
    PutU16(&out, 0);  // Comment length.
    PutU16(&out, 0);  // Disk number.
    PutU16(&out, 0);  // Internal attributes.
    PutU32(&out, 0);  // External attributes.
    PutU32(&out, e.offset);
    out += e.name;
  }
  const uint32_t cd_size = static_cast<uint32_t>(out.size()) - cd_offset;
  PutU32(&out, 0x06054b50);
  PutU16(&out, 0);
  PutU16(&out, 0);
  PutU16(&out, static_cast<uint16_t>(entries.size()));
  PutU16(&out, static_cast<uint16_t>(entries.size()));
  PutU32(&out, cd_size);
  PutU32(&out, cd_offset);
  PutU16(&out, 0);
  return out;
}

absl::Status WriteModelArgs(const std::string& path,
                            const nlohmann::json& args) {
  absl::StatusOr<std::string> pickle = PickleNamespace(args);
  if (!pickle.ok()) return pickle.status();
  const std::string zip = TorchSaveArchive(*pickle);
  return io::WriteFileAtomically(path, zip.data(), zip.size());
}

}  // namespace lvs::trainer
