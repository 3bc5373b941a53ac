#include "server/call_context.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "server/rich_status.h"

namespace lvs::server {

std::string EncodePageToken(int64_t before_seq, int filter) {
  return absl::WebSafeBase64Escape(
      absl::StrCat("v1:", before_seq, ":", filter));
}

absl::StatusOr<int64_t> DecodePageToken(const std::string& token, int filter,
                                        const std::string& field) {
  std::string raw;
  std::vector<std::string> parts;
  int64_t seq = 0;
  int token_filter = 0;
  if (absl::WebSafeBase64Unescape(token, &raw)) {
    parts = absl::StrSplit(raw, ':');
  }
  if (parts.size() != 3 || parts[0] != "v1" ||
      !absl::SimpleAtoi(parts[1], &seq) ||
      !absl::SimpleAtoi(parts[2], &token_filter) || seq <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": not a token from a previous response"));
  }
  if (token_filter != filter) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": the token belongs to a different filter"));
  }
  return seq;
}

int EffectivePageSize(int page_size) {
  if (page_size == 0) return 50;
  return std::min(page_size, 1000);
}

grpc::Status CheckReady(const ServiceContext& shared) {
  if (shared.ready) return grpc::Status::OK;
  return RichError(grpc::StatusCode::UNAVAILABLE,
                   "the server is starting: the job store is not open yet",
                   "NOT_READY")
      .RetryAfter(absl::Seconds(1))
      .Build();
}

grpc::Status GateClient(const ServiceContext& shared,
                        const grpc::CallbackServerContext* ctx,
                        ClientIdentity* identity) {
  grpc::Status status = CheckReady(shared);
  if (!status.ok()) return status;
  absl::StatusOr<ClientIdentity> who =
      shared.credentials->AuthenticateClient(MetadataOf(ctx));
  if (!who.ok()) return ToGrpc(who.status());
  *identity = *std::move(who);
  return grpc::Status::OK;
}

grpc::Status GateAdmin(const ServiceContext& shared,
                       const grpc::CallbackServerContext* ctx) {
  grpc::Status status = CheckReady(shared);
  if (!status.ok()) return status;
  return ToGrpc(shared.credentials->AuthorizeAdmin(MetadataOf(ctx)));
}

grpc::Status LoadNamedJob(const ServiceContext& shared, JobKind kind,
                          const std::string& name, const std::string* owner,
                          JobRecord* job) {
  absl::StatusOr<std::string> id = ParseJobName(kind, name, "name");
  if (!id.ok()) {
    return RichError(grpc::StatusCode::INVALID_ARGUMENT,
                     std::string(id.status().message()), "INVALID_REQUEST")
        .FieldViolation("name", std::string(id.status().message()))
        .Build();
  }
  absl::StatusOr<JobRecord> found = shared.store->Get(kind, *id);
  if (found.ok() && owner != nullptr && found->owner != *owner) {
    found = absl::NotFoundError(absl::StrCat(name, " does not exist"));
  }
  if (!found.ok()) return ToGrpc(found.status());
  *job = *std::move(found);
  return grpc::Status::OK;
}

void ApplyPageToken(const std::string& page_token, ListQuery* query,
                    google::rpc::BadRequest* bad) {
  if (page_token.empty()) return;
  absl::StatusOr<int64_t> before =
      DecodePageToken(page_token, query->state, "page_token");
  if (before.ok()) {
    query->before_seq = *before;
    return;
  }
  google::rpc::BadRequest::FieldViolation* v = bad->add_field_violations();
  v->set_field("page_token");
  v->set_description(std::string(before.status().message()));
}

absl::StatusOr<std::vector<JobRecord>> ReadJobPage(
    const ServiceContext& shared, ListQuery query, int page_size,
    std::string* next_page_token) {
  const int size = EffectivePageSize(page_size);
  query.limit = size + 1;  // One more tells whether another page follows.
  absl::StatusOr<std::vector<JobRecord>> jobs = shared.store->List(query);
  if (!jobs.ok()) return jobs.status();
  next_page_token->clear();
  if (static_cast<int>(jobs->size()) > size) {
    jobs->resize(size);
    *next_page_token = EncodePageToken(jobs->back().seq, query.state);
  }
  return jobs;
}

}  // namespace lvs::server
