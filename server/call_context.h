// Per-call plumbing shared by the public gRPC services (VideoService and
// AdminService): the gate every call passes first (readiness of the job
// store, then the caller's credential read from the call metadata), the job
// a request's `name` field names, and AIP-158 pages of job lists
// (ServeJobPage does the whole List method after its own field checks).
//
// Thread-safety: stateless functions over thread-safe components; safe from
// any RPC thread.
#ifndef LVS_SERVER_CALL_CONTEXT_H_
#define LVS_SERVER_CALL_CONTEXT_H_

#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/rpc/error_details.pb.h"
#include "server/auth.h"
#include "server/job_store.h"
#include "server/rich_status.h"
#include "server/service_state.h"

namespace lvs::server {

// Returns UNAVAILABLE (reason NOT_READY, retry after a second) until the job
// store is open, OK afterwards.
grpc::Status CheckReady(const ServiceContext& shared);

// Gates a VideoService call: readiness, then the caller's API key
// (UNAUTHENTICATED when missing or unknown). Sets `identity` on success.
grpc::Status GateClient(const ServiceContext& shared,
                        const grpc::CallbackServerContext* ctx,
                        ClientIdentity* identity);

// Gates an AdminService call: readiness, then the admin credential
// (UNAUTHENTICATED when missing or unknown, PERMISSION_DENIED for a client
// key).
grpc::Status GateAdmin(const ServiceContext& shared,
                       const grpc::CallbackServerContext* ctx);

// Loads the job of `kind` that a request's `name` field names. A malformed
// name is INVALID_ARGUMENT (reason INVALID_REQUEST, with a violation on
// "name"); a missing job is NOT_FOUND. With a non-null `owner`, another
// owner's job is NOT_FOUND too, so that callers cannot probe for ids.
grpc::Status LoadNamedJob(const ServiceContext& shared, JobKind kind,
                          const std::string& name, const std::string* owner,
                          JobRecord* job);

// Decodes a List request's `page_token` (field "page_token") into
// `query->before_seq`; the token must come from a listing with the same
// `query->state`. A bad token adds a violation to `bad`.
void ApplyPageToken(const std::string& page_token, ListQuery* query,
                    google::rpc::BadRequest* bad);

// Reads one page of `query` (page size as the request gave it, with AIP-158
// defaults), newest first. `next_page_token` is set to the token of the
// following page, or "" on the last page.
absl::StatusOr<std::vector<JobRecord>> ReadJobPage(
    const ServiceContext& shared, ListQuery query, int page_size,
    std::string* next_page_token);

// Serves the rest of a List method once the caller has checked its own
// fields into `bad`: the page token, then one page of `query` into
// `response` (its `jobs`, each made by `to_proto` from a JobRecord, and its
// `next_page_token`). Returns INVALID_ARGUMENT listing every violation.
template <typename Request, typename Response, typename ToProto>
grpc::Status ServeJobPage(const ServiceContext& shared, const Request& request,
                          ListQuery query, google::rpc::BadRequest bad,
                          Response* response, ToProto to_proto) {
  ApplyPageToken(request.page_token(), &query, &bad);
  if (bad.field_violations_size() > 0) return InvalidRequest(bad);
  absl::StatusOr<std::vector<JobRecord>> jobs = ReadJobPage(
      shared, query, request.page_size(), response->mutable_next_page_token());
  if (!jobs.ok()) return ToGrpc(jobs.status());
  for (const JobRecord& job : *jobs) *response->add_jobs() = to_proto(job);
  return grpc::Status::OK;
}

// Encodes a page token: the position after which the next page starts and a
// fingerprint of the filter (a token used with another filter is rejected).
std::string EncodePageToken(int64_t before_seq, int filter);

// Decodes a page token for `filter` (INVALID_ARGUMENT naming `field`).
absl::StatusOr<int64_t> DecodePageToken(const std::string& token, int filter,
                                        const std::string& field);

// Applies AIP-158 page size rules: 0 -> 50, above 1000 -> 1000.
int EffectivePageSize(int page_size);

}  // namespace lvs::server

#endif  // LVS_SERVER_CALL_CONTEXT_H_
