#include "server/request_parse.h"

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/unknown_field_set.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/utf8.h"
#include "server/rich_status.h"

namespace lvs::server {
namespace {

namespace pb = ::google::protobuf;

// Nested messages deeper than this are not searched (protobuf's own
// recursion limit is 100).
constexpr int kMaxDepth = 32;

// Walks `wire` as `type` without checking strings, looking for a `string`
// field that is not UTF-8; its path goes to `path`. Returns false when
// `wire` is not wire format.
bool Find(absl::string_view wire, const pb::Descriptor* type,
          const std::string& prefix, int depth, std::string* path) {
  pb::UnknownFieldSet fields;
  if (!fields.ParseFromArray(wire.data(), static_cast<int>(wire.size()))) {
    return false;
  }
  for (int i = 0; i < fields.field_count() && path->empty(); ++i) {
    const pb::UnknownField& f = fields.field(i);
    if (f.type() != pb::UnknownField::TYPE_LENGTH_DELIMITED) continue;
    const pb::FieldDescriptor* field = type->FindFieldByNumber(f.number());
    if (field == nullptr) continue;
    if (field->type() == pb::FieldDescriptor::TYPE_STRING) {
      if (!IsValidUtf8(f.length_delimited())) {
        *path = prefix + field->name();
      }
    } else if (field->type() == pb::FieldDescriptor::TYPE_MESSAGE &&
               depth < kMaxDepth) {
      // A map entry's key and value are reported as the map field.
      const pb::Descriptor* sub = field->message_type();
      std::string sub_path;
      if (!Find(f.length_delimited(), sub,
                absl::StrCat(prefix, field->name(), "."), depth + 1,
                &sub_path)) {
        return false;
      }
      if (!sub_path.empty()) {
        *path = sub->options().map_entry() ? prefix + field->name() : sub_path;
      }
    }
  }
  return true;
}

}  // namespace

std::string FirstNonUtf8Field(absl::string_view wire,
                              const pb::Descriptor* type) {
  std::string path;
  if (!Find(wire, type, "", 0, &path)) return "";
  return path;
}

grpc::Status ParseRequest(const grpc::ByteBuffer& raw, pb::Message* out) {
  std::vector<grpc::Slice> slices;
  std::string wire;
  if (raw.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      wire.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  // Checked first: protobuf would log every refused string.
  const std::string field = FirstNonUtf8Field(wire, out->GetDescriptor());
  if (!field.empty()) {
    return RichError(grpc::StatusCode::INVALID_ARGUMENT,
                     absl::StrCat("invalid request: ", field,
                                  " is not valid UTF-8 (string fields carry "
                                  "UTF-8 text)"),
                     "INVALID_REQUEST")
        .FieldViolation(field, "must be valid UTF-8")
        .Build();
  }
  if (!out->ParseFromString(wire)) {
    return RichError(grpc::StatusCode::INVALID_ARGUMENT,
                     absl::StrCat("the request is not a serialized ",
                                  out->GetDescriptor()->full_name()),
                     "INVALID_REQUEST")
        .Build();
  }
  return grpc::Status::OK;
}

grpc::ByteBuffer ToByteBuffer(const pb::Message& message) {
  grpc::Slice slice(message.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace lvs::server
