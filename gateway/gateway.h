// lvs-gateway: the `/v1/videos` HTTP/JSON API and the web page in front of an
// lvs-server, speaking gRPC (VideoService) to it. Admission, API keys, limits
// and the job store stay in the server: each HTTP request becomes one gRPC
// call carrying the request's `Authorization: Bearer` key as the call
// credential, so a job is the same resource over HTTP and gRPC.
//
//   POST   /v1/videos                  CreateVideoJob (JSON or multipart)
//   GET    /v1/videos                  ListVideoJobs (limit, after, order)
//   GET    /v1/videos/{id}             GetVideoJob
//   DELETE /v1/videos/{id}             DeleteVideoJob
//   POST   /v1/videos/{id}/cancel      CancelVideoJob
//   GET    /v1/videos/{id}/content     the MP4 made so far (Range), or with
//                                      ?follow=true the live fMP4 stream
//   GET    /v1/videos/{id}/events      Server-Sent Events (Last-Event-ID)
//   GET    /                           the page; /healthz (alive), /readyz
//                                      (200 while the server is reachable)
//
// Connections are served by a fixed pool of `threads` threads; when all are
// busy, up to `max_pending` accepted connections wait and the accept loop
// then stops accepting (the kernel backlog holds the rest). Long calls
// (events, followed content) are limited to `max_streams` at once so they can
// never take the whole pool (503 beyond).
//
// Thread-safety: handlers run on the pool's threads; Gateway's state is the
// stream counter (atomic) and the thread-safe gRPC stub.
#ifndef LVS_GATEWAY_GATEWAY_H_
#define LVS_GATEWAY_GATEWAY_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lumina/video/v1/video_service.grpc.pb.h"
#include "rpc/channel.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace lvs::gateway {

// What the gateway serves and how.
struct GatewayOptions {
  // gRPC address (and TLS files) of lvs-server's public port.
  rpc::ChannelOptions server;
  // host:port to listen on (port 0 picks a free one).
  std::string listen = "127.0.0.1:8080";
  // Origins allowed to call the API from other pages ("*" for any); empty
  // sends no CORS headers.
  std::vector<std::string> cors_origins;
  // Request bodies larger than this are refused (413).
  size_t max_body_bytes = 1 << 20;
  // Connection threads, waiting connections and concurrent long calls.
  int threads = 32;
  int max_pending = 64;
  int max_streams = 24;
  // Deadline of the short gRPC calls.
  absl::Duration call_deadline = absl::Seconds(30);
  // Frame rate used to turn `seconds` into frames when no fps is given.
  int default_fps = 16;
  // Idle and I/O timeouts of HTTP connections.
  absl::Duration io_timeout = absl::Seconds(30);
};

// See the file comment.
class Gateway {
 public:
  // Binds `options.listen` and starts serving. INVALID_ARGUMENT for a
  // malformed address or option, UNAVAILABLE when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(GatewayOptions options);
  // Stops accepting, ends the streams and joins the threads.
  ~Gateway();

  // The bound port.
  int port() const { return port_; }

 private:
  explicit Gateway(GatewayOptions options);
  void Routes();

  void Create(const httplib::Request& req, httplib::Response& res);
  void List(const httplib::Request& req, httplib::Response& res);
  void Get(const httplib::Request& req, httplib::Response& res);
  void Delete(const httplib::Request& req, httplib::Response& res);
  void Cancel(const httplib::Request& req, httplib::Response& res);
  void Content(const httplib::Request& req, httplib::Response& res);
  void FollowContent(const std::string& name, const std::string& key,
                     httplib::Response& res);
  void Events(const httplib::Request& req, httplib::Response& res);

  // Reads the bearer key into `key`; false (401 written) when the header is
  // present but not "Bearer <key>".
  bool ApiKey(const httplib::Request& req, httplib::Response& res,
              std::string* key);
  // Reads job `name` with GetVideoJob under `key` into `job`; false (the
  // mapped HTTP error written) when the call fails.
  bool GetJob(const std::string& name, const std::string& key,
              httplib::Response& res, lumina::video::v1::VideoJob* job);
  // Takes a long-call slot; false (503 written) when none is left.
  bool AcquireStream(httplib::Response& res);
  void ReleaseStream();

  GatewayOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<lumina::video::v1::VideoService::Stub> stub_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  std::atomic<int> streams_{0};
  std::atomic<bool> stopping_{false};
  int port_ = 0;
};

}  // namespace lvs::gateway

#endif  // LVS_GATEWAY_GATEWAY_H_
