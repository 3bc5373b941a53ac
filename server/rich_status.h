// Builds grpc::Status values after the gRPC rich error model: a
// google.rpc.Status in the binary details with exactly one ErrorInfo
// (UPPER_SNAKE reason, domain "lvs.lumina.video.v1") and at most one of each
// BadRequest, QuotaFailure, RetryInfo and PreconditionFailure.
//
// Thread-safety: a RichError is a value type; use it from one thread.
#ifndef LVS_SERVER_RICH_STATUS_H_
#define LVS_SERVER_RICH_STATUS_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace lvs::server {

// The ErrorInfo domain of every lvs error.
inline constexpr char kErrorDomain[] = "lvs.lumina.video.v1";

// A rich error under construction.
class RichError {
 public:
  // An error with `code`, `message` and ErrorInfo `reason`.
  RichError(grpc::StatusCode code, std::string message, std::string reason);

  // Adds ErrorInfo metadata.
  RichError& Metadata(const std::string& key, const std::string& value);
  // Adds a BadRequest field violation.
  RichError& FieldViolation(const std::string& field,
                            const std::string& description);
  // Adds every violation of `bad_request`.
  RichError& FieldViolations(const google::rpc::BadRequest& bad_request);
  // Adds a QuotaFailure violation.
  RichError& Quota(const std::string& subject, const std::string& description);
  // Sets RetryInfo.
  RichError& RetryAfter(absl::Duration delay);
  // Adds a PreconditionFailure violation.
  RichError& Precondition(const std::string& type, const std::string& subject,
                          const std::string& description);

  // The grpc::Status with the serialized google.rpc.Status as details.
  grpc::Status Build() const;

 private:
  grpc::StatusCode code_;
  std::string message_;
  google::rpc::ErrorInfo info_;
  google::rpc::BadRequest bad_request_;
  google::rpc::QuotaFailure quota_;
  google::rpc::PreconditionFailure precondition_;
  bool has_retry_ = false;
  google::rpc::RetryInfo retry_;
};

// Converts an absl::Status (codes share numbers) into a rich grpc::Status with
// an ErrorInfo whose reason is the code's name (e.g. NOT_FOUND).
grpc::Status ToGrpc(const absl::Status& status);

// Converts a google.rpc.Status (as stored for failed jobs) into a grpc::Status
// carrying it as details.
grpc::Status ToGrpc(const google::rpc::Status& status);

// INVALID_ARGUMENT listing every field of `bad` in the message and in a
// BadRequest detail.
grpc::Status InvalidRequest(const google::rpc::BadRequest& bad);

// Parses the google.rpc.Status details of a grpc::Status (empty when none).
google::rpc::Status DetailsOf(const grpc::Status& status);

}  // namespace lvs::server

#endif  // LVS_SERVER_RICH_STATUS_H_
