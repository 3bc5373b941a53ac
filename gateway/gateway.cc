#include "gateway/gateway.h"

#include <httplib.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <limits>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "gateway/page.h"
#include "gateway/video_json.h"
#include "grpcpp/grpcpp.h"

namespace lvs::gateway {
namespace {

namespace v1 = lumina::video::v1;
using nlohmann::json;

constexpr char kId[] = R"(([A-Za-z0-9_.\-]{1,128}))";

// httplib's task queue with a bounded backlog: enqueue() (the accept loop)
// waits while `max_pending` connections already wait for a thread.
class BoundedPool : public httplib::TaskQueue {
 public:
  BoundedPool(int threads, int max_pending) : max_pending_(max_pending) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~BoundedPool() override = default;

  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mu_);
    room_.wait(lock, [&] {
      return shutdown_ || static_cast<int>(jobs_.size()) < max_pending_;
    });
    if (shutdown_) return;
    jobs_.push_back(std::move(fn));
    ready_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      shutdown_ = true;
    }
    ready_.notify_all();
    room_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        ready_.wait(lock, [&] { return shutdown_ || !jobs_.empty(); });
        if (shutdown_ && jobs_.empty()) return;
        fn = std::move(jobs_.front());
        jobs_.pop_front();
        room_.notify_one();
      }
      fn();
    }
  }

  const int max_pending_;
  std::mutex mu_;
  std::condition_variable ready_, room_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  bool shutdown_ = false;                   // guarded by mu_
  std::vector<std::thread> threads_;
};

void WriteJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void WriteError(httplib::Response& res, const HttpError& e) {
  if (!e.retry_after.empty()) res.set_header("Retry-After", e.retry_after);
  WriteJson(res, e.status, e.body);
}

std::string JobName(const httplib::Request& req) {
  return absl::StrCat("jobs/", req.matches[1].str());
}

}  // namespace

Gateway::Gateway(GatewayOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(
    GatewayOptions options) {
  if (options.threads < 2 || options.max_pending < 1 ||
      options.max_streams < 1 || options.max_streams >= options.threads) {
    return absl::InvalidArgumentError(
        "--threads must be >= 2, --max-pending >= 1 and 1 <= --max-streams < "
        "--threads");
  }
  const size_t colon = options.listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(options.listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen=", options.listen,
                     ": expected host:port, e.g. 127.0.0.1:8080"));
  }
  std::string host = options.listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[')
    host = host.substr(1, host.size() - 2);

  std::unique_ptr<Gateway> g(new Gateway(std::move(options)));
  auto channel = rpc::MakeChannel(g->options_.server);
  if (!channel.ok()) return channel.status();
  g->channel_ = *channel;
  g->stub_ = v1::VideoService::NewStub(g->channel_);
  g->http_ = std::make_unique<httplib::Server>();
  httplib::Server& s = *g->http_;
  const int threads = g->options_.threads, pending = g->options_.max_pending;
  s.new_task_queue = [threads, pending] {
    return new BoundedPool(threads, pending);
  };
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  s.set_payload_max_length(g->options_.max_body_bytes);
  const time_t io = absl::ToInt64Seconds(g->options_.io_timeout);
  s.set_read_timeout(io, 0);
  s.set_write_timeout(io, 0);
  s.set_keep_alive_timeout(io);
  g->Routes();
  g->port_ = port == 0 ? s.bind_to_any_port(host)
                       : (s.bind_to_port(host, port) ? port : -1);
  if (g->port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("--listen: cannot bind ", g->options_.listen));
  }
  g->thread_ =
      std::thread([server = g->http_.get()] { server->listen_after_bind(); });
  return g;
}

Gateway::~Gateway() {
  stopping_ = true;
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
}

void Gateway::Routes() {
  httplib::Server& s = *http_;
  s.set_pre_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) {
        const std::string origin = req.get_header_value("Origin");
        if (origin.empty() || options_.cors_origins.empty()) {
          if (req.method == "OPTIONS") {
            WriteError(res, MakeError(405,
                                      "cross-origin requests are not enabled "
                                      "(lvs-gateway --cors-origin)"));
            return httplib::Server::HandlerResponse::Handled;
          }
          return httplib::Server::HandlerResponse::Unhandled;
        }
        bool allowed = false;
        for (const std::string& o : options_.cors_origins)
          allowed |= (o == "*" || o == origin);
        if (allowed) {
          res.set_header("Access-Control-Allow-Origin", origin);
          res.set_header("Vary", "Origin");
          res.set_header(
              "Access-Control-Expose-Headers",
              "Content-Range, Content-Length, Accept-Ranges, Retry-After");
        }
        if (req.method == "OPTIONS") {
          if (allowed) {
            res.status = 204;
            res.set_header("Access-Control-Allow-Methods",
                           "GET, POST, DELETE, OPTIONS");
            res.set_header("Access-Control-Allow-Headers",
                           "Authorization, Content-Type, Idempotency-Key, "
                           "Last-Event-ID, Range");
            res.set_header("Access-Control-Max-Age", "600");
          } else {
            WriteError(res,
                       MakeError(403, "origin not allowed", "", "cors_origin"));
          }
          return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
      });
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.content_length_ > 0) return;
    std::string message = absl::StrCat("HTTP status ", res.status);
    if (res.status == 404)
      message = absl::StrCat("no route ", req.method, " ", req.path);
    if (res.status == 413)
      message = "request body too large (lvs-gateway --max-body-bytes)";
    WriteError(res, MakeError(res.status, message));
  });
  // One JSON line per request on stderr (no headers: they carry API keys).
  s.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    common::LogEvent("http", {{"method", req.method},
                              {"path", req.path},
                              {"status", res.status},
                              {"remote", req.remote_addr}});
  });
  s.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        WriteError(res, MakeError(500, "internal error"));
      });

  using H = void (Gateway::*)(const httplib::Request&, httplib::Response&);
  auto bind = [this](H h) {
    return [this, h](const httplib::Request& req, httplib::Response& res) {
      (this->*h)(req, res);
    };
  };
  const std::string id = kId;
  s.Post("/v1/videos", bind(&Gateway::Create));
  s.Get("/v1/videos", bind(&Gateway::List));
  s.Get("/v1/videos/" + id, bind(&Gateway::Get));
  s.Delete("/v1/videos/" + id, bind(&Gateway::Delete));
  s.Post("/v1/videos/" + id + "/cancel", bind(&Gateway::Cancel));
  s.Get("/v1/videos/" + id + "/content", bind(&Gateway::Content));
  s.Get("/v1/videos/" + id + "/events", bind(&Gateway::Events));
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  // Ready while the server's gRPC port accepts a connection.
  s.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    const bool ready = channel_->WaitForConnected(
        std::chrono::system_clock::now() + std::chrono::seconds(2));
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ready\n" : "server not reachable\n", "text/plain");
  });
  s.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-cache");
    res.set_header(
        "Content-Security-Policy",
        "default-src 'self'; media-src 'self' blob:; "
        "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'");
    res.set_content(std::string(PageHtml()), "text/html; charset=utf-8");
  });
}

bool Gateway::ApiKey(const httplib::Request& req, httplib::Response& res,
                     std::string* key) {
  key->clear();
  if (!req.has_header("Authorization")) return true;
  const std::string h = req.get_header_value("Authorization");
  absl::string_view v = absl::StripAsciiWhitespace(h);
  if (!absl::ConsumePrefix(&v, "Bearer ") &&
      !absl::ConsumePrefix(&v, "bearer ")) {
    WriteError(res, MakeError(401, "Authorization must be 'Bearer <api key>'",
                              "", "invalid_authorization"));
    return false;
  }
  *key = std::string(absl::StripAsciiWhitespace(v));
  return true;
}

bool Gateway::GetJob(const std::string& name, const std::string& key,
                     httplib::Response& res, v1::VideoJob* job) {
  v1::GetVideoJobRequest request;
  request.set_name(name);
  grpc::ClientContext context;
  rpc::PrepareClientContext(&context, options_.call_deadline, key);
  const grpc::Status st = stub_->GetVideoJob(&context, request, job);
  if (st.ok()) return true;
  WriteError(res, ErrorFromGrpc(st));
  return false;
}

bool Gateway::AcquireStream(httplib::Response& res) {
  if (streams_.fetch_add(1) >= options_.max_streams) {
    streams_.fetch_sub(1);
    HttpError e =
        MakeError(503, "too many open streams (lvs-gateway --max-streams)", "",
                  "too_many_streams");
    e.retry_after = "1";
    WriteError(res, e);
    return false;
  }
  return true;
}

void Gateway::ReleaseStream() { streams_.fetch_sub(1); }

void Gateway::Create(const httplib::Request& req, httplib::Response& res) {
  std::string key;
  if (!ApiKey(req, res, &key)) return;
  Params params;
  if (req.is_multipart_form_data()) {
    for (const auto& [name, file] : req.files) {
      if (!file.filename.empty() && name != "input_reference") continue;
      params[name] = file.content;
    }
  } else {
    const std::string type = req.get_header_value("Content-Type");
    if (!type.empty() && !absl::StartsWith(type, "application/json")) {
      WriteError(res, MakeError(415,
                                "Content-Type must be application/json or "
                                "multipart/form-data"));
      return;
    }
    auto parsed = ParamsFromJson(req.body);
    if (!parsed.ok()) {
      WriteError(res, MakeError(400, std::string(parsed.status().message()), "",
                                "invalid_json"));
      return;
    }
    params = *std::move(parsed);
  }
  ParamError perr;
  auto video = RequestFromParams(params, options_.default_fps, &perr);
  if (!video.ok()) {
    WriteError(res,
               MakeError(400, perr.message, perr.param, "invalid_parameter"));
    return;
  }
  v1::CreateVideoJobRequest request;
  *request.mutable_video() = *std::move(video);
  request.set_request_id(req.get_header_value("Idempotency-Key"));
  grpc::ClientContext context;
  rpc::PrepareClientContext(&context, options_.call_deadline, key);
  v1::VideoJob job;
  const grpc::Status st = stub_->CreateVideoJob(&context, request, &job);
  if (!st.ok()) return WriteError(res, ErrorFromGrpc(st));
  WriteJson(res, 200, VideoObject(job));
}

void Gateway::List(const httplib::Request& req, httplib::Response& res) {
  std::string key;
  if (!ApiKey(req, res, &key)) return;
  int limit = 20;
  if (req.has_param("limit") &&
      (!absl::SimpleAtoi(req.get_param_value("limit"), &limit) || limit < 1 ||
       limit > 100)) {
    return WriteError(
        res, MakeError(400, "limit: expected an integer from 1 to 100", "limit",
                       "invalid_parameter"));
  }
  const std::string order =
      req.has_param("order") ? req.get_param_value("order") : "desc";
  if (order != "asc" && order != "desc") {
    return WriteError(res, MakeError(400, "order: expected asc or desc",
                                     "order", "invalid_parameter"));
  }
  const std::string after = req.get_param_value("after");
  // The server lists newest first; read every page (bounded) and cut here.
  std::vector<v1::VideoJob> jobs;
  std::string token;
  constexpr size_t kMaxJobs = 10000;
  do {
    v1::ListVideoJobsRequest request;
    request.set_page_size(1000);
    request.set_page_token(token);
    v1::ListVideoJobsResponse response;
    grpc::ClientContext context;
    rpc::PrepareClientContext(&context, options_.call_deadline, key);
    const grpc::Status st = stub_->ListVideoJobs(&context, request, &response);
    if (!st.ok()) return WriteError(res, ErrorFromGrpc(st));
    for (v1::VideoJob& j : *response.mutable_jobs())
      jobs.push_back(std::move(j));
    token = response.next_page_token();
  } while (!token.empty() && jobs.size() < kMaxJobs);
  if (order == "asc") std::reverse(jobs.begin(), jobs.end());
  size_t start = 0;
  if (!after.empty()) {
    auto it = std::find_if(
        jobs.begin(), jobs.end(),
        [&](const v1::VideoJob& j) { return VideoId(j.name()) == after; });
    if (it == jobs.end()) {
      return WriteError(res, MakeError(400, "after: no such video", "after",
                                       "invalid_parameter"));
    }
    start = static_cast<size_t>(it - jobs.begin()) + 1;
  }
  json data = json::array();
  size_t i = start;
  for (; i < jobs.size() && data.size() < static_cast<size_t>(limit); ++i) {
    data.push_back(VideoObject(jobs[i]));
  }
  json body = {{"object", "list"},
               {"data", data},
               {"has_more", i < jobs.size()},
               {"first_id", data.empty() ? json(nullptr) : data.front()["id"]},
               {"last_id", data.empty() ? json(nullptr) : data.back()["id"]}};
  WriteJson(res, 200, body);
}

void Gateway::Get(const httplib::Request& req, httplib::Response& res) {
  std::string key;
  if (!ApiKey(req, res, &key)) return;
  v1::VideoJob job;
  if (!GetJob(JobName(req), key, res, &job)) return;
  WriteJson(res, 200, VideoObject(job));
}

void Gateway::Delete(const httplib::Request& req, httplib::Response& res) {
  std::string key;
  if (!ApiKey(req, res, &key)) return;
  v1::DeleteVideoJobRequest request;
  request.set_name(JobName(req));
  grpc::ClientContext context;
  rpc::PrepareClientContext(&context, options_.call_deadline, key);
  google::protobuf::Empty empty;
  const grpc::Status st = stub_->DeleteVideoJob(&context, request, &empty);
  if (!st.ok()) return WriteError(res, ErrorFromGrpc(st));
  WriteJson(res, 200,
            {{"id", req.matches[1].str()},
             {"object", "video.deleted"},
             {"deleted", true}});
}

void Gateway::Cancel(const httplib::Request& req, httplib::Response& res) {
  std::string key;
  if (!ApiKey(req, res, &key)) return;
  v1::CancelVideoJobRequest request;
  request.set_name(JobName(req));
  grpc::ClientContext context;
  rpc::PrepareClientContext(&context, options_.call_deadline, key);
  v1::VideoJob job;
  const grpc::Status st = stub_->CancelVideoJob(&context, request, &job);
  if (!st.ok()) return WriteError(res, ErrorFromGrpc(st));
  WriteJson(res, 200, VideoObject(job));
}

}  // namespace lvs::gateway
