// Parsing of raw request bytes with an explanation on failure.
//
// Protobuf refuses to parse a proto3 `string` field that is not UTF-8, and
// gRPC's callback API answers a request it cannot parse with UNIMPLEMENTED
// and no message. Methods that carry free text (CreateVideoJob,
// GenerateVideo) therefore take their request as bytes and parse it here:
// a string field holding invalid UTF-8 becomes INVALID_ARGUMENT with a
// BadRequest naming the field ("video.prompt"); other undecodable bytes
// become INVALID_ARGUMENT naming the message type. The API keeps `string`:
// the field is text, and clients of every language send it as text.
//
// Thread-safety: pure functions.
#ifndef LVS_SERVER_REQUEST_PARSE_H_
#define LVS_SERVER_REQUEST_PARSE_H_

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include <string>

#include "absl/strings/string_view.h"

namespace lvs::server {

// The path ("video.prompt", "video.labels") of the first `string` field of
// `wire`, a serialized `type`, whose value is not UTF-8; "" when there is
// none or `wire` is not wire format.
std::string FirstNonUtf8Field(absl::string_view wire,
                              const google::protobuf::Descriptor* type);

// Parses `raw` into `out`; OK, or INVALID_ARGUMENT as described above.
grpc::Status ParseRequest(const grpc::ByteBuffer& raw,
                          google::protobuf::Message* out);

// `message` serialized into a ByteBuffer (a raw method's response).
grpc::ByteBuffer ToByteBuffer(const google::protobuf::Message& message);

}  // namespace lvs::server

#endif  // LVS_SERVER_REQUEST_PARSE_H_
