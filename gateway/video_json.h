// The JSON shapes of lvs-gateway's `/v1/videos` API and their mapping to the
// gRPC API (lumina.video.v1): the video object built from a VideoJob, the
// create parameters (JSON or multipart/form-data fields) turned into a
// GenerateVideoRequest, Server-Sent Event payloads from GenerateVideoEvents,
// and errors `{"error": {"message", "type", "param", "code"}}` with the HTTP
// status that matches a gRPC status and its rich-error details.
//
// Fields the client leaves out stay 0 or empty in the request: the server
// fills its defaults and validates every field (the gateway checks only the
// syntax it has to parse, e.g. "WxH" and numbers).
//
// Thread-safety: stateless functions.
#ifndef LVS_GATEWAY_VIDEO_JSON_H_
#define LVS_GATEWAY_VIDEO_JSON_H_

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "grpcpp/support/status.h"
#include "lumina/video/v1/common.pb.h"

namespace lvs::gateway {

// The id of a job name ("jobs/abc" -> "abc").
std::string VideoId(const std::string& job_name);

// "completed", "in_progress", ... for a job state.
std::string VideoStatus(lumina::video::v1::JobState state);

// 0..100: denoising steps count for 90, decoded frames for the last 10.
int VideoProgress(const lumina::video::v1::VideoJob& job);

// The video object of `job`.
nlohmann::json VideoObject(const lumina::video::v1::VideoJob& job);

// Create parameters as strings (JSON scalars or form fields), by name.
using Params = std::map<std::string, std::string>;

// Reads the parameters of a JSON object body. INVALID_ARGUMENT when the body
// is not a JSON object or a field has an unusable type (`sample_config` may be
// a string naming a config or an object, kept as its JSON text).
absl::StatusOr<Params> ParamsFromJson(const std::string& body);

// A create-parameter error: the message and the parameter it concerns.
struct ParamError {
  std::string message;
  std::string param;
};

// Builds the request from `params`. `default_fps` converts `seconds` to
// frames when neither `frames` nor `fps` is given. Unknown parameters and bad
// syntax are errors (the first one found).
absl::StatusOr<lumina::video::v1::GenerateVideoRequest> RequestFromParams(
    const Params& params, int default_fps, ParamError* error);

// An HTTP error: status, headers to add (Retry-After) and the JSON body.
struct HttpError {
  int status = 500;
  std::string retry_after;  // seconds, empty when none
  nlohmann::json body;
};

// The error object for an HTTP status, message, param and code.
HttpError MakeError(int status, const std::string& message,
                    const std::string& param = "",
                    const std::string& code = "");

// The HTTP error for a failed gRPC call: status from the code (400, 401, 403,
// 404, 409, 429, 503, ...), param from the first BadRequest field, every
// field violation in the message, code from ErrorInfo.reason (lower case) or
// the gRPC code name, Retry-After from RetryInfo.
HttpError ErrorFromGrpc(const grpc::Status& status);

// The Server-Sent Event name and JSON payload of one job event ("queued",
// "started", "text_encoded", "step", "decoded", "chunk" (offset and size, no
// bytes), "completed", "requeued").
std::pair<std::string, nlohmann::json> EventPayload(
    const lumina::video::v1::GenerateVideoEvent& event);

}  // namespace lvs::gateway

#endif  // LVS_GATEWAY_VIDEO_JSON_H_
