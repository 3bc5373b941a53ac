// Test fixture for lvs-server in process: a ServerApp on loopback ports
// 0 with API keys, an admin key and a worker token, gRPC stubs, and a
// scripted worker that speaks the WorkerService stream.
#ifndef LVS_TESTS_SERVER_SERVER_FIXTURE_H_
#define LVS_TESTS_SERVER_SERVER_FIXTURE_H_

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lumina/video/v1/admin_service.grpc.pb.h"
#include "lumina/video/v1/video_service.grpc.pb.h"
#include "lumina/video/v1/worker_service.grpc.pb.h"
#include "server/server_app.h"
#include "tests/server/test_util.h"

namespace lvs::server::testing {

namespace v1 = ::lumina::video::v1;
using std::chrono::system_clock;

constexpr char kClientKey[] = "client-key-1";
constexpr char kAdminKey[] = "admin-key-1";
constexpr char kWorkerToken[] = "worker-token-1";

// The grpc.health.v1 status of `service` (1 SERVING, 2 NOT_SERVING), or -1
// with the call's error code in `code`.
inline int HealthStatus(const std::shared_ptr<grpc::Channel>& channel,
                        const std::string& service,
                        grpc::StatusCode* code = nullptr) {
  grpc::GenericStub stub(channel);
  std::string request;
  if (!service.empty()) {
    request.push_back(0x0a);  // Field 1, length-delimited.
    request.push_back(static_cast<char>(service.size()));
    request += service;
  }
  grpc::Slice slice(request);
  grpc::ByteBuffer in(&slice, 1), out;
  grpc::ClientContext ctx;
  ctx.set_deadline(system_clock::now() + std::chrono::seconds(5));
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &in,
                 &out, [&](grpc::Status s) { done.set_value(s); });
  grpc::Status status = done.get_future().get();
  if (code != nullptr) *code = status.error_code();
  if (!status.ok()) return -1;
  std::vector<grpc::Slice> slices;
  out.Dump(&slices);
  std::string bytes;
  for (const auto& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  // HealthCheckResponse{status = 1 (varint)}; absent means UNKNOWN (0).
  return bytes.size() == 2 && bytes[0] == 0x08 ? bytes[1] : 0;
}

// A worker process reduced to its stream: register, read, report.
class ScriptedWorker {
 public:
  ScriptedWorker(int port, const std::string& name,
                 const std::string& token = kWorkerToken,
                 v1::WorkerKind kind = v1::WORKER_KIND_GENERATOR) {
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::WorkerService::NewStub(channel_);
    ctx_.set_deadline(system_clock::now() + std::chrono::seconds(30));
    if (!token.empty()) ctx_.AddMetadata("x-lvs-worker-token", token);
    stream_ = stub_->Connect(&ctx_);
    v1::WorkerMessage reg;
    reg.mutable_register_()->set_name(name);
    reg.mutable_register_()->set_kind(kind);
    stream_->Write(reg);
  }

  // Reads the next server message (false when the stream ended).
  bool Read(v1::ServerMessage* m) { return stream_->Read(m); }

  // Asks for a job and returns the assignment.
  v1::JobAssignment Lease() {
    v1::WorkerMessage m;
    m.mutable_lease_request();
    stream_->Write(m);
    v1::ServerMessage in;
    while (Read(&in)) {
      if (in.has_assignment()) return in.assignment();
    }
    ADD_FAILURE() << "stream ended before an assignment";
    return {};
  }

  void Event(const std::string& lease, const v1::GenerateVideoEvent& e) {
    v1::WorkerMessage m;
    m.mutable_job_event()->set_lease_id(lease);
    *m.mutable_job_event()->mutable_event() = e;
    stream_->Write(m);
  }

  void Step(const std::string& lease, int index, int total) {
    v1::GenerateVideoEvent e;
    e.mutable_step()->set_index(index);
    e.mutable_step()->set_total(total);
    e.mutable_step()->set_patch("1x2");
    Event(lease, e);
  }

  void Chunk(const std::string& lease, int64_t offset, const std::string& d) {
    v1::GenerateVideoEvent e;
    e.mutable_chunk()->set_offset(offset);
    e.mutable_chunk()->set_data(d);
    Event(lease, e);
  }

  void Complete(const std::string& lease) {
    v1::WorkerMessage m;
    m.mutable_job_result()->set_lease_id(lease);
    m.mutable_job_result()->mutable_completed()->set_frames(9);
    m.mutable_job_result()->mutable_completed()->set_fps(8);
    stream_->Write(m);
  }

  // Writes any message.
  void Send(const v1::WorkerMessage& m) { stream_->Write(m); }

  void Close() {
    stream_->WritesDone();
    v1::ServerMessage m;
    while (stream_->Read(&m)) {
    }
    stream_->Finish();
  }

  grpc::ClientContext& ctx() { return ctx_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::WorkerMessage, v1::ServerMessage>>
      stream_;
};

class ServerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    Write("keys", absl::StrCat(kClientKey, "\nlimited:1:1\nalice:2:3\n"));
    Write("admin", kAdminKey);
    Write("worker", kWorkerToken);
    options_.listen = "127.0.0.1:0";
    options_.worker_listen = "127.0.0.1:0";
    options_.metrics_listen = "127.0.0.1:0";
    options_.health_listen = "127.0.0.1:0";
    options_.store.data_dir = dir_.path() + "/data";
    options_.api_keys_file = dir_.path() + "/keys";
    options_.admin_key_file = dir_.path() + "/admin";
    options_.worker_token_file = dir_.path() + "/worker";
    options_.drain_grace = absl::Seconds(20);
    options_.tick_interval = absl::Milliseconds(50);
    options_.video.max_queue = 4;
  }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_.path() + "/" + name) << text;
  }

  void StartServer() {
    auto app = ServerApp::Create(options_);
    ASSERT_TRUE(app.ok()) << app.status();
    app_ = *std::move(app);
    ASSERT_TRUE(app_->Start().ok());
    Connect();
  }

  void Connect() {
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", app_->port()),
                                   grpc::InsecureChannelCredentials());
    video_ = v1::VideoService::NewStub(channel_);
    admin_ = v1::AdminService::NewStub(channel_);
  }

  std::unique_ptr<grpc::ClientContext> Ctx(
      const std::string& key = kClientKey) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(system_clock::now() + std::chrono::seconds(20));
    if (!key.empty()) ctx->AddMetadata("authorization", "Bearer " + key);
    return ctx;
  }

  static v1::GenerateVideoRequest Request(const std::string& prompt = "cat") {
    v1::GenerateVideoRequest r;
    r.set_prompt(prompt);
    r.set_width(64);
    r.set_height(64);
    r.set_frames(9);
    return r;
  }

  grpc::Status Create(v1::VideoJob* job, const std::string& request_id = "",
                      const std::string& key = kClientKey,
                      const v1::GenerateVideoRequest& request = Request()) {
    v1::CreateVideoJobRequest req;
    *req.mutable_video() = request;
    req.set_request_id(request_id);
    return video_->CreateVideoJob(Ctx(key).get(), req, job);
  }

  v1::VideoJob Get(const std::string& name) {
    v1::GetVideoJobRequest req;
    req.set_name(name);
    v1::VideoJob job;
    EXPECT_TRUE(video_->GetVideoJob(Ctx().get(), req, &job).ok());
    return job;
  }

  // Reads a whole WatchVideoJob stream.
  grpc::Status Watch(const std::string& name, int64_t from,
                     std::vector<v1::GenerateVideoEvent>* events) {
    v1::WatchVideoJobRequest req;
    req.set_name(name);
    req.set_from_offset(from);
    auto ctx = Ctx();
    auto reader = video_->WatchVideoJob(ctx.get(), req);
    v1::GenerateVideoEvent e;
    while (reader->Read(&e)) events->push_back(e);
    return reader->Finish();
  }

  // The store's read count once every commit's followers have run and no
  // stream has read for 100 ms (streams read again after a write completes).
  int64_t SettledStoreReads() {
    int64_t reads = -1;
    for (int i = 0; i < 100; ++i) {
      app_->store()->Flush();
      const int64_t now = app_->store()->reads();
      if (now == reads) break;
      reads = now;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return reads;
  }

  static std::string Bytes(const std::vector<v1::GenerateVideoEvent>& events,
                           int64_t from) {
    std::string out;
    int64_t next = from;
    for (const auto& e : events) {
      if (!e.has_chunk()) continue;
      EXPECT_EQ(e.chunk().offset(), next);
      next += e.chunk().data().size();
      out += e.chunk().data();
    }
    return out;
  }

  TempDir dir_;
  ServerOptions options_;
  std::unique_ptr<ServerApp> app_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::VideoService::Stub> video_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
};

}  // namespace lvs::server::testing

#endif  // LVS_TESTS_SERVER_SERVER_FIXTURE_H_
