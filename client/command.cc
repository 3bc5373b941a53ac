#include "client/command.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "absl/synchronization/mutex.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace lvs::client {
namespace {

absl::Mutex interrupt_mu;
grpc::ClientContext* interrupt_context ABSL_GUARDED_BY(interrupt_mu) = nullptr;
std::atomic<bool> interrupt_seen{false};

// Opens the channel, printing the error on failure.
std::shared_ptr<grpc::Channel> OpenChannel(const GlobalOptions& options) {
  auto channel = rpc::MakeChannel(options.channel);
  if (!channel.ok()) {
    std::fprintf(stderr, "lvs: %s\n",
                 std::string(channel.status().message()).c_str());
    return nullptr;
  }
  return *std::move(channel);
}

}  // namespace

void StartSignalThread() {
  static sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([] {
    while (true) {
      int signal = 0;
      if (sigwait(&signals, &signal) != 0) continue;
      absl::MutexLock lock(&interrupt_mu);
      if (interrupt_context == nullptr || interrupt_seen.exchange(true)) {
        _exit(130);
      }
      interrupt_context->TryCancel();
    }
  }).detach();
}

CancelOnInterrupt::CancelOnInterrupt(grpc::ClientContext* context) {
  absl::MutexLock lock(&interrupt_mu);
  interrupt_context = context;
}

CancelOnInterrupt::~CancelOnInterrupt() {
  absl::MutexLock lock(&interrupt_mu);
  interrupt_context = nullptr;
}

bool CancelOnInterrupt::interrupted() { return interrupt_seen.load(); }

std::unique_ptr<lumina::video::v1::VideoService::Stub> OpenVideoService(
    const GlobalOptions& options) {
  std::shared_ptr<grpc::Channel> channel = OpenChannel(options);
  if (channel == nullptr) return nullptr;
  return lumina::video::v1::VideoService::NewStub(channel);
}

std::unique_ptr<lumina::video::v1::AdminService::Stub> OpenAdminService(
    const GlobalOptions& options) {
  std::shared_ptr<grpc::Channel> channel = OpenChannel(options);
  if (channel == nullptr) return nullptr;
  return lumina::video::v1::AdminService::NewStub(channel);
}

void PrintRpcError(const std::string& what, const grpc::Status& status) {
  std::fprintf(stderr, "lvs: %s: %s\n", what.c_str(),
               rpc::DescribeStatus(status).c_str());
}

std::string JobName(const std::string& id_or_name) {
  if (absl::StartsWith(id_or_name, "jobs/")) return id_or_name;
  return absl::StrCat("jobs/", id_or_name);
}

}  // namespace lvs::client
