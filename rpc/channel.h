// gRPC channels and call contexts for lvs clients (the `lvs` CLI, lvs-worker
// and the tests): plaintext or TLS / mutual TLS from certificate files, a
// credential sent as metadata on every call, and readable errors that list
// the rich-error details (google.rpc.BadRequest, QuotaFailure, RetryInfo,
// ErrorInfo) a server attached.
//
// Thread-safety: functions are stateless; channels are thread-safe.
#ifndef LVS_RPC_CHANNEL_H_
#define LVS_RPC_CHANNEL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"

namespace lvs::rpc {

// Where and how to connect.
struct ChannelOptions {
  // host:port of the server.
  std::string target = "127.0.0.1:50051";
  // PEM file of the CA that signed the server certificate; empty means
  // plaintext (the loopback default).
  std::string tls_ca;
  // PEM client certificate and key for mutual TLS (both or neither).
  std::string tls_cert;
  std::string tls_key;
};

// Opens a channel to `options.target`. INVALID_ARGUMENT naming the flag when
// a certificate file cannot be read or only one of cert/key is given.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const ChannelOptions& options);

// Sets `deadline` from now (when positive) on `context` and adds the
// metadata `key: value` (when `value` is not empty).
void PrepareContext(grpc::ClientContext* context, absl::Duration deadline,
                    const std::string& key, const std::string& value);

// Adds `authorization: Bearer <api_key>` (when not empty) and the deadline.
void PrepareClientContext(grpc::ClientContext* context, absl::Duration deadline,
                          const std::string& api_key);

// The rich-error details of a status, decoded.
struct ErrorDetails {
  // "field: description" for each google.rpc.BadRequest field violation.
  std::vector<std::string> field_violations;
  // "subject: description" for each google.rpc.QuotaFailure violation.
  std::vector<std::string> quota_violations;
  // google.rpc.RetryInfo retry_delay, or zero when absent.
  absl::Duration retry_delay = absl::ZeroDuration();
  // google.rpc.ErrorInfo reason and domain, when present.
  std::string reason;
  std::string domain;
};

// Decodes the google.rpc.Status carried in `status.error_details()`.
ErrorDetails DecodeErrorDetails(const grpc::Status& status);

// Returns the status code's name ("INVALID_ARGUMENT").
std::string StatusCodeName(grpc::StatusCode code);

// Returns "CODE: message" followed by one indented line per detail.
std::string DescribeStatus(const grpc::Status& status);

}  // namespace lvs::rpc

#endif  // LVS_RPC_CHANNEL_H_
