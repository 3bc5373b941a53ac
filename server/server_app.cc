#include "server/server_app.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/job_log.h"

namespace lvs::server {
namespace {

constexpr char kVideoService[] = "lumina.video.v1.VideoService";
constexpr char kAdminService[] = "lumina.video.v1.AdminService";
constexpr char kWorkerService[] = "lumina.video.v1.WorkerService";

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     const std::string& flag) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("--", flag, "=", path, ": cannot read the file"));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> LoadTls(
    const ServerOptions& o) {
  if (o.tls_cert.empty() && o.tls_key.empty()) {
    if (!o.tls_client_ca.empty()) {
      return absl::InvalidArgumentError(
          "--tls-client-ca needs --tls-cert and --tls-key");
    }
    return grpc::InsecureServerCredentials();
  }
  if (o.tls_cert.empty() || o.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key must be given together");
  }
  grpc::SslServerCredentialsOptions ssl(
      o.tls_client_ca.empty()
          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  LVS_ASSIGN_OR_RETURN(pair.private_key, ReadFile(o.tls_key, "tls-key"));
  LVS_ASSIGN_OR_RETURN(pair.cert_chain, ReadFile(o.tls_cert, "tls-cert"));
  ssl.pem_key_cert_pairs.push_back(pair);
  if (!o.tls_client_ca.empty()) {
    LVS_ASSIGN_OR_RETURN(ssl.pem_root_certs,
                         ReadFile(o.tls_client_ca, "tls-client-ca"));
  }
  return grpc::SslServerCredentials(ssl);
}

// Builds and starts one gRPC server on `address`; `port` gets the bound port.
absl::StatusOr<std::unique_ptr<grpc::Server>> StartServer(
    const std::string& address, const std::string& flag,
    const std::shared_ptr<grpc::ServerCredentials>& creds,
    const std::vector<grpc::Service*>& services, ServerMetrics* metrics,
    int max_receive, bool worker_port, int* port) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, creds, port);
  for (grpc::Service* s : services) builder.RegisterService(s);
  builder.SetMaxReceiveMessageSize(max_receive);
  // Dead peers are found by keepalive pings; workers may ping every 10 s,
  // clients every 5 min (gRPC's default policy).
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      worker_port ? 10000 : 300000);
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(
      std::make_unique<GrpcMetricsInterceptorFactory>(metrics));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || *port == 0) {
    return absl::UnavailableError(
        absl::StrCat("--", flag, "=", address, ": cannot listen"));
  }
  return server;
}

std::string WithPort(const std::string& address, int port) {
  return absl::StrCat(address.substr(0, address.rfind(':')), ":", port);
}

}  // namespace

ServerApp::ServerApp(ServerOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &real_clock_),
      metrics_(&registry_) {}

absl::StatusOr<std::unique_ptr<ServerApp>> ServerApp::Create(
    ServerOptions options) {
  std::unique_ptr<ServerApp> app(new ServerApp(std::move(options)));
  const ServerOptions& o = app->options_;
  LVS_ASSIGN_OR_RETURN(app->credentials_,
                       Credentials::Load(o.api_keys_file, o.admin_key_file,
                                         o.worker_token_file));
  LVS_ASSIGN_OR_RETURN(app->tls_, LoadTls(o));
  app->shared_.hub = &app->hub_;
  app->shared_.credentials = &app->credentials_;

  app->shared_.metrics = &app->metrics_;
  app->video_ = std::make_unique<VideoServiceImpl>(&app->shared_, o.video);
  app->admin_ =
      std::make_unique<AdminServiceImpl>(&app->shared_, o.video.max_queue);
  app->worker_ = std::make_unique<WorkerServiceImpl>(&app->shared_);
  ServerApp* self = app.get();
  app->registry_.AddCollector([self] {
    if (!self->shared_.ready) return;
    self->metrics_.store_reads_total->Set({}, self->shared_.store->reads());
    absl::StatusOr<std::map<int, int64_t>> depth =
        self->shared_.store->QueuedByPriority(JobKind::kVideo);
    if (!depth.ok()) return;
    for (int p : {v1::PRIORITY_LOW, v1::PRIORITY_NORMAL, v1::PRIORITY_HIGH}) {
      auto it = depth->find(p);
      std::string label = v1::Priority_Name(static_cast<v1::Priority>(p));
      label = absl::AsciiStrToLower(label.substr(strlen("PRIORITY_")));
      self->metrics_.queue_depth->Set({label},
                                      it == depth->end() ? 0 : it->second);
    }
  });
  return app;
}

ServerApp::~ServerApp() { Shutdown(); }

void ServerApp::SetServing(bool serving) {
  for (grpc::Server* s :
       {public_server_.get(), worker_server_.get(), health_server_.get()}) {
    if (s != nullptr && s->GetHealthCheckService() != nullptr) {
      s->GetHealthCheckService()->SetServingStatus(serving);
    }
  }
}

absl::Status ServerApp::Listen() {
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  LVS_ASSIGN_OR_RETURN(
      public_server_,
      StartServer(options_.listen, "listen", tls_, {video_.get(), admin_.get()},
                  &metrics_, options_.max_receive_message_bytes, false,
                  &port_));
  LVS_ASSIGN_OR_RETURN(
      worker_server_,
      StartServer(options_.worker_listen, "worker-listen", tls_,
                  {worker_.get()}, &metrics_,
                  options_.max_receive_message_bytes, true, &worker_port_));
  if (!options_.health_listen.empty()) {
    LVS_ASSIGN_OR_RETURN(health_server_,
                         StartServer(options_.health_listen, "health-listen",
                                     grpc::InsecureServerCredentials(), {},
                                     &metrics_, 4096, false, &health_port_));
  }
  // Named services start NOT_SERVING like the whole server.
  for (const char* name : {kVideoService, kAdminService}) {
    public_server_->GetHealthCheckService()->SetServingStatus(name, false);
    if (health_server_) {
      health_server_->GetHealthCheckService()->SetServingStatus(name, false);
    }
  }
  worker_server_->GetHealthCheckService()->SetServingStatus(kWorkerService,
                                                            false);
  SetServing(false);
  if (!options_.metrics_listen.empty()) {
    rpc::HttpEndpoint::Handlers handlers;
    handlers.metrics = [this] { return registry_.Render(); };
    handlers.ready = [this] {
      return shared_.ready.load() && !shared_.draining.load();
    };
    LVS_ASSIGN_OR_RETURN(
        http_, rpc::HttpEndpoint::Start(options_.metrics_listen, handlers));
  }
  const bool tls = !options_.tls_cert.empty();
  LogEvent(
      "listening",
      {{"msg", absl::StrCat("listening on ", WithPort(options_.listen, port_),
                            " (VideoService, AdminService, health, "
                            "reflection)")},
       {"address", WithPort(options_.listen, port_)},
       {"tls", tls},
       {"mtls", !options_.tls_client_ca.empty()}});
  LogEvent("listening",
           {{"msg", absl::StrCat("listening on ",
                                 WithPort(options_.worker_listen, worker_port_),
                                 " (WorkerService)")},
            {"address", WithPort(options_.worker_listen, worker_port_)}});
  if (health_server_) {
    LogEvent(
        "listening",
        {{"msg", absl::StrCat("listening on ",
                              WithPort(options_.health_listen, health_port_),
                              " (plaintext health)")},
         {"address", WithPort(options_.health_listen, health_port_)}});
  }
  if (http_) {
    LogEvent(
        "listening",
        {{"msg", absl::StrCat("listening on ",
                              WithPort(options_.metrics_listen, http_->port()),
                              " (HTTP /metrics /healthz /readyz)")},
         {"address", WithPort(options_.metrics_listen, http_->port())}});
  }
  return absl::OkStatus();
}

absl::Status ServerApp::OpenStore() {
  LVS_ASSIGN_OR_RETURN(DataDirLock lock,
                       DataDirLock::Acquire(options_.store.data_dir));
  data_dir_lock_.emplace(std::move(lock));
  LVS_ASSIGN_OR_RETURN(store_, JobStore::Open(options_.store, clock_));
  // An API key's max_concurrent bounds its running jobs (the dispatcher);
  // its max_queued bounds its queued ones (admission).
  DispatcherOptions dispatcher_options = options_.dispatcher;
  dispatcher_options.owner_max_running = [this](const std::string& owner) {
    return credentials_.MaxConcurrent(owner);
  };
  dispatcher_ = std::make_unique<Dispatcher>(store_.get(), clock_, &hub_,
                                             &metrics_, dispatcher_options);
  shared_.store = store_.get();
  shared_.dispatcher = dispatcher_.get();
  shared_.ready = true;
  for (const char* name : {kVideoService, kAdminService}) {
    public_server_->GetHealthCheckService()->SetServingStatus(name, true);
    if (health_server_) {
      health_server_->GetHealthCheckService()->SetServingStatus(name, true);
    }
  }
  worker_server_->GetHealthCheckService()->SetServingStatus(kWorkerService,
                                                            true);
  SetServing(true);
  ticker_ = std::thread([this] { TickLoop(); });
  LogEvent("serving", {{"data_dir", options_.store.data_dir}});
  return absl::OkStatus();
}

absl::Status ServerApp::Start() {
  LVS_RETURN_IF_ERROR(Listen());
  return OpenStore();
}

void ServerApp::TickLoop() {
  while (!stop_ticker_.WaitForNotificationWithTimeout(options_.tick_interval)) {
    dispatcher_->Tick();
  }
}

void ServerApp::Drain() {
  if (shut_down_) return;
  LogEvent("draining",
           {{"grace_s", absl::ToDoubleSeconds(options_.drain_grace)}});
  shared_.draining = true;
  SetServing(false);
  if (dispatcher_) {
    dispatcher_->SetLeasing(false);
    const absl::Time deadline = absl::Now() + options_.drain_grace;
    while (dispatcher_->BusyWorkers() > 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  Shutdown();
}

void ServerApp::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  shared_.stopping = true;
  shared_.draining = true;
  SetServing(false);
  if (ticker_.joinable()) {
    stop_ticker_.Notify();
    ticker_.join();
  }
  if (store_) {
    // The store's change observer wakes the followers of these jobs; the
    // streams see them queued before the ports close.
    store_->RequeueRunningAsync(
        "the server shut down",
        [](absl::StatusOr<std::vector<JobRecord>> requeued) {
          if (!requeued.ok()) return;
          for (JobRecord& job : *requeued) {
            job.state = v1::QUEUED;
            LogJobState(job, "re-queued at shutdown");
          }
        });
    store_->Flush();
  }
  const auto deadline =
      std::chrono::system_clock::now() + std::chrono::seconds(1);
  for (grpc::Server* s :
       {public_server_.get(), worker_server_.get(), health_server_.get()}) {
    if (s != nullptr) s->Shutdown(deadline);
  }
  // Store completions call into the dispatcher and the streams: let the
  // last ones run before either goes away.
  if (store_) store_->Flush();
  http_.reset();
  LogEvent("stopped", {});
}

}  // namespace lvs::server
