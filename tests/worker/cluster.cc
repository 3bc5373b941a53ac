#include "tests/worker/cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/impl/codegen/client_unary_call.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"
#include "model/media/video_decoder.h"
#include "rpc/channel.h"

namespace lvs::testing {

namespace pb = ::lumina::video::v1;

std::string ServerBinary() { return LVS_SERVER_BIN; }
std::string WorkerBinary() { return LVS_WORKER_BIN; }
std::string CliBinary() { return LVS_CLI_BIN; }

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

Cluster::Cluster(const std::string& name)
    : dir_(absl::StrCat(::testing::TempDir(), "/lvs-", name, "-", getpid())),
      port_(FreePort()),
      worker_port_(FreePort()),
      metrics_port_(FreePort()) {
  mkdir(dir_.c_str(), 0755);
}

Cluster::~Cluster() {
  workers_.clear();
  server_.reset();
  // Keep the logs of a failed test; remove everything else.
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir_);
}

std::string Cluster::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

absl::Status Cluster::StartServer(const std::vector<std::string>& extra_flags) {
  std::vector<std::string> argv = {
      ServerBinary(), absl::StrCat("--listen=127.0.0.1:", port_),
      absl::StrCat("--worker-listen=127.0.0.1:", worker_port_),
      absl::StrCat("--metrics-listen=127.0.0.1:", metrics_port_),
      absl::StrCat("--data-dir=", dir_, "/data")};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  auto p = Subprocess::Start(argv, absl::StrCat(dir_, "/server.log"));
  if (!p.ok()) return p.status();
  server_ = std::make_unique<Subprocess>(*std::move(p));
  const absl::Time end = absl::Now() + absl::Seconds(20);
  while (HttpGet("/readyz") != 200) {
    if (!server_->Running() || absl::Now() > end) {
      return absl::UnavailableError(
          absl::StrCat("lvs-server did not become ready; log:\n",
                       ReadFile(server_->log_path())));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  rpc::ChannelOptions options = channel_options_;
  options.target = address();
  auto channel = rpc::MakeChannel(options);
  if (!channel.ok()) return channel.status();
  channel_ = *channel;
  video_ = pb::VideoService::NewStub(channel_);
  admin_ = pb::AdminService::NewStub(channel_);
  return absl::OkStatus();
}

absl::Status Cluster::LaunchWorker(
    const std::string& name, const std::vector<std::string>& extra_flags) {
  std::vector<std::string> argv = {
      WorkerBinary(), absl::StrCat("--server=127.0.0.1:", worker_port_),
      absl::StrCat("--name=", name), "--model=fake", "--x264-preset=ultrafast"};
  bool metrics = false;
  for (const std::string& f : extra_flags) {
    metrics = metrics || absl::StartsWith(f, "--metrics-listen");
  }
  if (!metrics) argv.push_back("--metrics-listen=127.0.0.1:0");
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  auto p = Subprocess::Start(argv, absl::StrCat(dir_, "/", name, ".log"));
  if (!p.ok()) return p.status();
  workers_[name] = std::make_unique<Subprocess>(*std::move(p));
  return absl::OkStatus();
}

bool Cluster::WorkerListed(const std::string& name, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  do {
    pb::ListWorkersResponse response;
    grpc::ClientContext context;
    rpc::PrepareClientContext(&context, absl::Seconds(2), admin_key_);
    if (admin_->ListWorkers(&context, pb::ListWorkersRequest(), &response)
            .ok()) {
      for (const pb::Worker& w : response.workers()) {
        if (w.name() == name) return true;
      }
    }
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < end);
  return false;
}

absl::Status Cluster::StartWorker(const std::string& name,
                                  const std::vector<std::string>& extra_flags) {
  absl::Status launched = LaunchWorker(name, extra_flags);
  if (!launched.ok()) return launched;
  if (WorkerListed(name, absl::Seconds(20))) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("worker ", name, " did not register; log:\n",
                   ReadFile(workers_[name]->log_path())));
}

std::string Cluster::Health(const std::string& service) {
  // grpc.health.v1.HealthCheckRequest{service = 1}, encoded by hand: the
  // health proto is not packaged for C++ on Debian.
  std::string request;
  if (!service.empty()) {
    request.push_back(0x0a);
    request.push_back(static_cast<char>(service.size()));
    request += service;
  }
  grpc::Slice slice(request);
  grpc::ByteBuffer in(&slice, 1), out;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  const grpc::internal::RpcMethod method("/grpc.health.v1.Health/Check",
                                         grpc::internal::RpcMethod::NORMAL_RPC);
  const grpc::Status s =
      grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
          channel_.get(), method, &context, in, &out);
  if (!s.ok()) return rpc::StatusCodeName(s.error_code());
  grpc::Slice reply;
  if (!out.DumpToSingleSlice(&reply).ok() || reply.size() < 2 ||
      reply.begin()[0] != 0x08) {
    return "UNKNOWN";
  }
  switch (reply.begin()[1]) {
    case 1:
      return "SERVING";
    case 2:
      return "NOT_SERVING";
    default:
      return "UNKNOWN";
  }
}

int Cluster::HttpGet(const std::string& path, std::string* body) {
  return HttpGetPort(metrics_port_, path, body);
}

int HttpGetPort(int port, const std::string& path, std::string* body) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return 0;
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  (void)!write(fd, request.data(), request.size());
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) response.append(buf, n);
  close(fd);
  int code = 0;
  const size_t sp = response.find(' ');
  if (sp == std::string::npos ||
      !absl::SimpleAtoi(response.substr(sp + 1, 3), &code)) {
    return 0;
  }
  if (body != nullptr) {
    const size_t start = response.find("\r\n\r\n");
    *body = start == std::string::npos ? "" : response.substr(start + 4);
  }
  return code;
}

absl::StatusOr<pb::VideoJob> Cluster::Create(
    const pb::GenerateVideoRequest& request, const std::string& request_id) {
  pb::CreateVideoJobRequest create;
  *create.mutable_video() = request;
  create.set_request_id(request_id);
  pb::VideoJob job;
  grpc::ClientContext context;
  rpc::PrepareClientContext(&context, absl::Seconds(10), api_key_);
  const grpc::Status s = video_->CreateVideoJob(&context, create, &job);
  if (!s.ok()) return FromGrpc(s);
  return job;
}

absl::StatusOr<pb::VideoJob> Cluster::Get(const std::string& name) {
  pb::GetVideoJobRequest get;
  get.set_name(name);
  pb::VideoJob job;
  grpc::ClientContext context;
  rpc::PrepareClientContext(&context, absl::Seconds(10), api_key_);
  const grpc::Status s = video_->GetVideoJob(&context, get, &job);
  if (!s.ok()) return FromGrpc(s);
  return job;
}

absl::StatusOr<pb::VideoJob> Cluster::WaitFor(
    const std::string& name,
    const std::function<bool(const pb::VideoJob&)>& done,
    absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  pb::VideoJob last;
  while (absl::Now() < end) {
    absl::StatusOr<pb::VideoJob> job = Get(name);
    if (job.ok()) {
      if (done(*job)) return job;
      last = *job;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "waiting for ", name, "; last state ", pb::JobState_Name(last.state())));
}

absl::StatusOr<pb::VideoJob> Cluster::WaitFinished(const std::string& name,
                                                   absl::Duration timeout) {
  return WaitFor(
      name,
      [](const pb::VideoJob& j) {
        return j.state() == pb::SUCCEEDED || j.state() == pb::FAILED ||
               j.state() == pb::CANCELLED;
      },
      timeout);
}

absl::StatusOr<std::string> Cluster::Watch(
    const std::string& name, int64_t from_offset,
    std::vector<pb::GenerateVideoEvent>* events) {
  pb::WatchVideoJobRequest request;
  request.set_name(name);
  request.set_from_offset(from_offset);
  grpc::ClientContext context;
  rpc::PrepareClientContext(&context, absl::Seconds(60), api_key_);
  auto reader = video_->WatchVideoJob(&context, request);
  std::string mp4;
  pb::GenerateVideoEvent event;
  while (reader->Read(&event)) {
    if (event.has_chunk()) {
      if (event.chunk().offset() !=
          from_offset + static_cast<int64_t>(mp4.size())) {
        context.TryCancel();
        return absl::DataLossError(
            absl::StrCat("chunk at ", event.chunk().offset(), " expected ",
                         from_offset + mp4.size()));
      }
      mp4 += event.chunk().data();
    }
    if (event.has_requeued()) mp4.clear();
    if (events != nullptr) events->push_back(event);
  }
  const grpc::Status s = reader->Finish();
  if (!s.ok()) return FromGrpc(s);
  return mp4;
}

pb::GenerateVideoRequest SmallRequest(int steps, int frames) {
  pb::GenerateVideoRequest r;
  r.set_prompt("a lighthouse in a storm");
  r.set_width(64);
  r.set_height(64);
  r.set_frames(frames);
  r.set_fps(8);
  r.set_steps(steps);
  r.set_seed(42);
  return r;
}

absl::StatusOr<int> CountFrames(const std::string& mp4) {
  auto decoder = media::VideoDecoder::OpenBuffer(
      std::vector<uint8_t>(mp4.begin(), mp4.end()), "mp4");
  if (!decoder.ok()) return decoder.status();
  auto frames = (*decoder)->DecodeAll();
  if (!frames.ok()) return frames.status();
  return static_cast<int>(frames->size());
}

}  // namespace lvs::testing
