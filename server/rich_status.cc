#include "server/rich_status.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/proto_time.h"

namespace lvs::server {

RichError::RichError(grpc::StatusCode code, std::string message,
                     std::string reason)
    : code_(code), message_(std::move(message)) {
  info_.set_reason(std::move(reason));
  info_.set_domain(kErrorDomain);
}

RichError& RichError::Metadata(const std::string& key,
                               const std::string& value) {
  (*info_.mutable_metadata())[key] = value;
  return *this;
}

RichError& RichError::FieldViolation(const std::string& field,
                                     const std::string& description) {
  auto* v = bad_request_.add_field_violations();
  v->set_field(field);
  v->set_description(description);
  return *this;
}

RichError& RichError::FieldViolations(
    const google::rpc::BadRequest& bad_request) {
  bad_request_.MergeFrom(bad_request);
  return *this;
}

RichError& RichError::Quota(const std::string& subject,
                            const std::string& description) {
  auto* v = quota_.add_violations();
  v->set_subject(subject);
  v->set_description(description);
  return *this;
}

RichError& RichError::RetryAfter(absl::Duration delay) {
  has_retry_ = true;
  common::ToProto(delay, retry_.mutable_retry_delay());
  return *this;
}

RichError& RichError::Precondition(const std::string& type,
                                   const std::string& subject,
                                   const std::string& description) {
  auto* v = precondition_.add_violations();
  v->set_type(type);
  v->set_subject(subject);
  v->set_description(description);
  return *this;
}

grpc::Status RichError::Build() const {
  google::rpc::Status status;
  status.set_code(static_cast<int>(code_));
  status.set_message(message_);
  status.add_details()->PackFrom(info_);
  if (bad_request_.field_violations_size() > 0) {
    status.add_details()->PackFrom(bad_request_);
  }
  if (quota_.violations_size() > 0) status.add_details()->PackFrom(quota_);
  if (precondition_.violations_size() > 0) {
    status.add_details()->PackFrom(precondition_);
  }
  if (has_retry_) status.add_details()->PackFrom(retry_);
  return grpc::Status(code_, message_, status.SerializeAsString());
}

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  std::string reason =
      absl::AsciiStrToUpper(absl::StatusCodeToString(status.code()));
  for (char& c : reason) {
    if (c == ' ') c = '_';
  }
  return RichError(static_cast<grpc::StatusCode>(status.code()),
                   std::string(status.message()), reason)
      .Build();
}

grpc::Status ToGrpc(const google::rpc::Status& status) {
  if (status.code() == 0) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      status.message(), status.SerializeAsString());
}

grpc::Status InvalidRequest(const google::rpc::BadRequest& bad) {
  std::string fields;
  for (const auto& v : bad.field_violations()) {
    absl::StrAppend(&fields, fields.empty() ? "" : ", ", v.field());
  }
  return RichError(grpc::StatusCode::INVALID_ARGUMENT,
                   absl::StrCat("invalid request: ", fields), "INVALID_REQUEST")
      .FieldViolations(bad)
      .Build();
}

google::rpc::Status DetailsOf(const grpc::Status& status) {
  google::rpc::Status out;
  out.ParseFromString(status.error_details());
  return out;
}

}  // namespace lvs::server
