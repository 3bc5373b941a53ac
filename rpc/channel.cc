#include "rpc/channel.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace lvs::rpc {
namespace {

// Reads `path` whole; INVALID_ARGUMENT naming `flag` when it cannot.
absl::StatusOr<std::string> ReadPem(const std::string& path,
                                    const std::string& flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read '", path, "'"));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const ChannelOptions& options) {
  grpc::ChannelArguments args;
  // Keepalive within the server's policy (one ping per 5 min without data).
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 5 * 60 * 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 4 * 1024 * 1024);
  if (options.tls_ca.empty() && options.tls_cert.empty() &&
      options.tls_key.empty()) {
    return grpc::CreateCustomChannel(options.target,
                                     grpc::InsecureChannelCredentials(), args);
  }
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key: give both for mutual TLS, or neither");
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.tls_ca.empty()) {
    auto ca = ReadPem(options.tls_ca, "--tls-ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
  }
  if (!options.tls_cert.empty()) {
    auto cert = ReadPem(options.tls_cert, "--tls-cert");
    if (!cert.ok()) return cert.status();
    auto key = ReadPem(options.tls_key, "--tls-key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::CreateCustomChannel(options.target, grpc::SslCredentials(ssl),
                                   args);
}

void PrepareContext(grpc::ClientContext* context, absl::Duration deadline,
                    const std::string& key, const std::string& value) {
  if (deadline > absl::ZeroDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  }
  if (!value.empty()) context->AddMetadata(key, value);
}

void PrepareClientContext(grpc::ClientContext* context, absl::Duration deadline,
                          const std::string& api_key) {
  PrepareContext(context, deadline, "authorization",
                 api_key.empty() ? "" : absl::StrCat("Bearer ", api_key));
}

ErrorDetails DecodeErrorDetails(const grpc::Status& status) {
  ErrorDetails out;
  google::rpc::Status rich;
  if (status.error_details().empty() ||
      !rich.ParseFromString(status.error_details())) {
    return out;
  }
  for (const google::protobuf::Any& any : rich.details()) {
    google::rpc::BadRequest bad;
    google::rpc::QuotaFailure quota;
    google::rpc::RetryInfo retry;
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&bad)) {
      for (const auto& v : bad.field_violations()) {
        out.field_violations.push_back(
            absl::StrCat(v.field(), ": ", v.description()));
      }
    } else if (any.UnpackTo(&quota)) {
      for (const auto& v : quota.violations()) {
        out.quota_violations.push_back(
            absl::StrCat(v.subject(), ": ", v.description()));
      }
    } else if (any.UnpackTo(&retry)) {
      out.retry_delay = absl::Seconds(retry.retry_delay().seconds()) +
                        absl::Nanoseconds(retry.retry_delay().nanos());
    } else if (any.UnpackTo(&info)) {
      out.reason = info.reason();
      out.domain = info.domain();
    }
  }
  return out;
}

std::string StatusCodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  if (i >= 0 && i < static_cast<int>(std::size(kNames))) return kNames[i];
  return absl::StrCat("CODE_", i);
}

std::string DescribeStatus(const grpc::Status& status) {
  std::string out = absl::StrCat(StatusCodeName(status.error_code()), ": ",
                                 status.error_message());
  const ErrorDetails d = DecodeErrorDetails(status);
  if (!d.reason.empty()) {
    absl::StrAppend(&out, "\n  reason: ", d.reason, " (", d.domain, ")");
  }
  for (const std::string& v : d.field_violations) {
    absl::StrAppend(&out, "\n  bad field ", v);
  }
  for (const std::string& v : d.quota_violations) {
    absl::StrAppend(&out, "\n  quota ", v);
  }
  if (d.retry_delay > absl::ZeroDuration()) {
    absl::StrAppend(&out, "\n  retry after ",
                    absl::FormatDuration(d.retry_delay));
  }
  return out;
}

}  // namespace lvs::rpc
