// A real lvs deployment on loopback for the integration tests: one
// lvs-server (restartable on the same ports and data directory), any
// number of lvs-worker processes with the fake model, stubs for the public
// and admin services, and probes (gRPC health, HTTP /readyz).
//
// Every process is started with a bounded wait for readiness and killed when
// the Cluster is destroyed (and by PDEATHSIG if the test dies).
//
// Thread-safety: a Cluster is driven by the test's main thread; the stubs
// are thread-safe.
#ifndef LVS_TESTS_WORKER_CLUSTER_H_
#define LVS_TESTS_WORKER_CLUSTER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lumina/video/v1/admin_service.grpc.pb.h"
#include "lumina/video/v1/video_service.grpc.pb.h"
#include "rpc/channel.h"
#include "tests/worker/subprocess.h"

namespace lvs::testing {

// Paths of the binaries under test (set by CMake).
std::string ServerBinary();
std::string WorkerBinary();
std::string CliBinary();

// See the file comment.
class Cluster {
 public:
  // Uses a fresh directory under the test's temp dir named after `name`.
  explicit Cluster(const std::string& name);
  // Kills the processes; removes the directory unless the test failed.
  ~Cluster();

  // Starts lvs-server with `extra_flags` (added to the port and data-dir
  // flags) and waits until /readyz answers 200.
  absl::Status StartServer(const std::vector<std::string>& extra_flags = {});

  // Starts the fake-model worker `name` with `extra_flags` and waits until
  // the server lists it.
  absl::Status StartWorker(const std::string& name,
                           const std::vector<std::string>& extra_flags = {});

  // Starts the worker without waiting for its registration.
  absl::Status LaunchWorker(const std::string& name,
                            const std::vector<std::string>& extra_flags = {});

  // Returns whether the server lists the worker `name` (within `timeout`).
  bool WorkerListed(const std::string& name, absl::Duration timeout);

  // Channel settings of the test's own stubs (TLS files); set before
  // StartServer.
  void set_channel_options(const rpc::ChannelOptions& options) {
    channel_options_ = options;
  }

  // Admin key sent by the cluster's own admin calls (ListWorkers).
  void set_admin_key(const std::string& key) { admin_key_ = key; }

  // Client API key sent by Create, Get and Watch.
  void set_api_key(const std::string& key) { api_key_ = key; }

  // The server process (valid after StartServer).
  Subprocess& server() { return *server_; }

  // The worker process `name`.
  Subprocess& worker(const std::string& name) { return *workers_.at(name); }

  // The public and admin stubs (valid after StartServer).
  lumina::video::v1::VideoService::Stub& video() { return *video_; }
  lumina::video::v1::AdminService::Stub& admin() { return *admin_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

  // Ports and directory.
  int port() const { return port_; }
  int worker_port() const { return worker_port_; }
  int metrics_port() const { return metrics_port_; }
  const std::string& dir() const { return dir_; }
  std::string address() const;

  // Returns the gRPC health status of `service` ("" = whole server):
  // "SERVING", "NOT_SERVING", "UNKNOWN", or the RPC error code name.
  std::string Health(const std::string& service);

  // Returns the HTTP status of GET `path` on the metrics port (0 when the
  // connection fails), and its body in `body`.
  int HttpGet(const std::string& path, std::string* body = nullptr);

  // Creates a job for `request`.
  absl::StatusOr<lumina::video::v1::VideoJob> Create(
      const lumina::video::v1::GenerateVideoRequest& request,
      const std::string& request_id = "");

  // Returns the job `name`.
  absl::StatusOr<lumina::video::v1::VideoJob> Get(const std::string& name);

  // Polls the job until `done(job)` holds or `timeout` passes.
  absl::StatusOr<lumina::video::v1::VideoJob> WaitFor(
      const std::string& name,
      const std::function<bool(const lumina::video::v1::VideoJob&)>& done,
      absl::Duration timeout);

  // Waits for a finished state (SUCCEEDED, FAILED, CANCELLED).
  absl::StatusOr<lumina::video::v1::VideoJob> WaitFinished(
      const std::string& name, absl::Duration timeout);

  // Reads the whole event stream of WatchVideoJob(name, from_offset) and
  // returns the MP4 bytes from `from_offset`; `events` gets every event.
  absl::StatusOr<std::string> Watch(
      const std::string& name, int64_t from_offset,
      std::vector<lumina::video::v1::GenerateVideoEvent>* events = nullptr);

 private:
  std::string dir_;
  rpc::ChannelOptions channel_options_;
  std::string admin_key_;
  std::string api_key_;
  int port_, worker_port_, metrics_port_;
  std::unique_ptr<Subprocess> server_;
  std::map<std::string, std::unique_ptr<Subprocess>> workers_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<lumina::video::v1::VideoService::Stub> video_;
  std::unique_ptr<lumina::video::v1::AdminService::Stub> admin_;
};

// Returns the HTTP status of GET `path` on 127.0.0.1:`port` (0 when the
// connection fails), and its body in `body`.
int HttpGetPort(int port, const std::string& path, std::string* body = nullptr);

// A small valid request for the fake model.
lumina::video::v1::GenerateVideoRequest SmallRequest(int steps = 4,
                                                     int frames = 9);

// Decodes `mp4` and returns its frame count (or the decoder's error).
absl::StatusOr<int> CountFrames(const std::string& mp4);

// Returns grpc status `s` as an absl::Status (code and message).
absl::Status FromGrpc(const grpc::Status& s);

}  // namespace lvs::testing

#endif  // LVS_TESTS_WORKER_CLUSTER_H_
