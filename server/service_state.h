// What the server's gRPC services share: the lifecycle flags (whether the job
// store is open: before that every RPC answers UNAVAILABLE; whether the server
// is draining: no new jobs are admitted) and the components they use. The
// services are registered before the store is opened, so `store` and
// `dispatcher` are set just before `ready` becomes true and read only after a
// caller saw `ready`.
//
// Thread-safety: the flags are atomics; the pointers are written once before
// `ready` is set and only read afterwards.
#ifndef LVS_SERVER_SERVICE_STATE_H_
#define LVS_SERVER_SERVICE_STATE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <map>
#include <string>

#include "server/auth.h"

namespace lvs::server {

class Dispatcher;
class EventHub;
class JobStore;
struct ServerMetrics;

// See the file comment. Nothing is owned.
struct ServiceContext {
  std::atomic<bool> ready{false};
  std::atomic<bool> draining{false};
  // Set when the server shuts down: ending streams no longer cancel jobs.
  std::atomic<bool> stopping{false};
  JobStore* store = nullptr;         // Set before `ready`.
  Dispatcher* dispatcher = nullptr;  // Set before `ready`.
  EventHub* hub = nullptr;
  const Credentials* credentials = nullptr;
  ServerMetrics* metrics = nullptr;
};

// Copies a call's metadata into a plain map with lower-case keys.
inline Metadata MetadataOf(const grpc::CallbackServerContext* ctx) {
  Metadata md;
  for (const auto& [k, v] : ctx->client_metadata()) {
    md.emplace(std::string(k.data(), k.size()),
               std::string(v.data(), v.size()));
  }
  return md;
}

// Finishes a unary call with `status` through the context's default reactor.
inline grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx,
                                      const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

}  // namespace lvs::server

#endif  // LVS_SERVER_SERVICE_STATE_H_
