// rpc::WorkerLink against an in-process WorkerService on loopback: drain
// while an assignment arrives (a deterministic interleaving through the
// test seam, and many iterations of drain during lease churn), one lease at
// a time, CancelJob, heartbeats carrying the lease, and a refused name.
#include "rpc/worker_link.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace lvs::rpc {
namespace {

namespace pb = ::lumina::video::v1;

// A WorkerService that registers every caller and answers each lease
// request with a new assignment (optionally followed by a CancelJob).
class FakeWorkerService final : public pb::WorkerService::Service {
 public:
  struct Counts {
    int assignments = 0;
    int results = 0;
    int lease_requests = 0;
    int heartbeats_with_lease = 0;
    int cancel_acks = 0;
    int streams_ended = 0;
  };

  void set_cancel_each_assignment(bool v) { cancel_each_ = v; }

  Counts counts() {
    absl::MutexLock lock(&mu_);
    return counts_;
  }

  grpc::Status Connect(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<pb::ServerMessage, pb::WorkerMessage>* stream)
      override {
    pb::WorkerMessage in;
    if (!stream->Read(&in) || !in.has_register_()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "register");
    }
    if (in.register_().name() == "taken") {
      return grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "name taken");
    }
    pb::ServerMessage hello;
    hello.mutable_registered()->set_name(in.register_().name());
    hello.mutable_registered()->mutable_heartbeat_interval()->set_nanos(
        20 * 1000 * 1000);
    stream->Write(hello);
    while (stream->Read(&in)) {
      absl::MutexLock lock(&mu_);
      if (in.has_lease_request()) {
        ++counts_.lease_requests;
        const int n = ++counts_.assignments;
        pb::ServerMessage out;
        out.mutable_assignment()->set_lease_id(absl::StrCat("lease-", n));
        out.mutable_assignment()->set_job(absl::StrCat("videos/j", n));
        stream->Write(out);
        if (cancel_each_) {
          pb::ServerMessage cancel;
          cancel.mutable_cancel()->set_lease_id(absl::StrCat("lease-", n));
          cancel.mutable_cancel()->set_reason("test");
          stream->Write(cancel);
        }
      } else if (in.has_job_result()) {
        ++counts_.results;
      } else if (in.has_cancel_ack()) {
        ++counts_.cancel_acks;
      } else if (in.has_heartbeat() && !in.heartbeat().lease_id().empty()) {
        ++counts_.heartbeats_with_lease;
      }
    }
    absl::MutexLock lock(&mu_);
    ++counts_.streams_ended;
    return grpc::Status::OK;
  }

 private:
  std::atomic<bool> cancel_each_{false};
  absl::Mutex mu_;
  Counts counts_ ABSL_GUARDED_BY(mu_);
};

// Runs each lease on its own thread: waits `hold` (or until cancelled),
// sends the final message, then finishes the lease.
class TestDelegate : public WorkerLink::Delegate {
 public:
  explicit TestDelegate(std::string name, absl::Duration hold)
      : name_(std::move(name)), hold_(hold) {}
  ~TestDelegate() override { JoinAll(); }

  void set_link(WorkerLink* link) { link_ = link; }

  pb::RegisterWorker Registration() override {
    pb::RegisterWorker reg;
    reg.set_name(name_);
    reg.set_kind(pb::WORKER_KIND_GENERATOR);
    return reg;
  }

  void StartLease(const pb::ServerMessage& assignment,
                  std::shared_ptr<Lease> lease) override {
    const int running = ++running_;
    if (running > 1) overlapping_ = true;
    ++started_;
    if (drain_returned_.load()) ++started_after_drain_;
    auto cancelled = std::make_shared<std::atomic<bool>>(false);
    lease->OnCancel([cancelled] { *cancelled = true; });
    absl::MutexLock lock(&mu_);
    threads_.emplace_back([this, lease, cancelled] {
      const absl::Time end = absl::Now() + hold_;
      while (absl::Now() < end && !lease->cancelled()) {
        absl::SleepFor(absl::Milliseconds(1));
      }
      pb::WorkerMessage done;
      if (lease->cancelled()) {
        if (*cancelled) ++cancel_callbacks_;
        done.mutable_cancel_ack()->set_lease_id(lease->id());
      } else {
        done.mutable_job_result()->set_lease_id(lease->id());
      }
      lease->Send(done);
      --running_;
      link_->Finish(lease);
    });
  }

  void JoinAll() {
    std::vector<std::thread> threads;
    {
      absl::MutexLock lock(&mu_);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }

  std::atomic<int> started_{0};
  std::atomic<int> started_after_drain_{0};
  std::atomic<int> cancel_callbacks_{0};
  std::atomic<bool> drain_returned_{false};
  std::atomic<bool> overlapping_{false};

 private:
  const std::string name_;
  const absl::Duration hold_;
  WorkerLink* link_ = nullptr;
  std::atomic<int> running_{0};
  absl::Mutex mu_;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

class WorkerLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override { server_->Shutdown(); }

  WorkerLinkOptions Options() const {
    WorkerLinkOptions o;
    o.channel.target = absl::StrCat("127.0.0.1:", port_);
    o.backoff_initial = absl::Milliseconds(10);
    o.backoff_max = absl::Milliseconds(50);
    o.close_grace = absl::Seconds(2);
    return o;
  }

  FakeWorkerService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// The interleaving of the old trainer's race: the drain lands after the
// assignment was read but before the link took it. The link must refuse it
// (the server re-queues the job when the stream ends) and return from Run.
TEST_F(WorkerLinkTest, DrainBetweenReadAndTakeRefusesTheAssignment) {
  TestDelegate delegate("w1", absl::Milliseconds(1));
  WorkerLink link(Options(), &delegate);
  delegate.set_link(&link);
  link.SetAssignmentHookForTesting([&] {
    link.Drain();
    delegate.drain_returned_ = true;
  });
  absl::Status status;
  std::thread run([&] { status = link.Run(); });
  run.join();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(delegate.started_.load(), 0);
  EXPECT_EQ(service_.counts().assignments, 1);
  EXPECT_EQ(service_.counts().results, 0);
  EXPECT_TRUE(link.State().draining);
  EXPECT_FALSE(link.State().busy);
}

// Many drains racing a stream of leases: after Drain() returns, a lease can
// still start only if the link had already taken it (State().busy), and
// none after that; every started lease finishes and Run() returns.
TEST_F(WorkerLinkTest, NoLeaseStartsAfterDrainReturns) {
  int busy_at_drain = 0;
  for (int i = 0; i < 150; ++i) {
    TestDelegate delegate(absl::StrCat("w", i), absl::ZeroDuration());
    WorkerLink link(Options(), &delegate);
    delegate.set_link(&link);
    absl::Status status;
    std::thread run([&] { status = link.Run(); });
    // Let a few leases go by (more as i grows), then drain.
    while (delegate.started_.load() < 1 + i % 7) {
      absl::SleepFor(absl::Microseconds(50));
    }
    link.Drain();
    const bool busy = link.State().busy;
    const int started_at_drain = delegate.started_.load();
    delegate.drain_returned_ = true;
    run.join();
    delegate.JoinAll();
    ASSERT_TRUE(status.ok()) << status;
    busy_at_drain += busy ? 1 : 0;
    const int after = delegate.started_.load() - started_at_drain;
    ASSERT_LE(after, busy ? 1 : 0) << "iteration " << i;
    ASSERT_FALSE(delegate.overlapping_.load()) << "iteration " << i;
  }
  // Both branches were exercised at least sometimes is not guaranteed on a
  // loaded machine; the invariant above is what matters.
  RecordProperty("busy_at_drain", busy_at_drain);
}

TEST_F(WorkerLinkTest, CancelJobCancelsTheLeaseAndHeartbeatsCarryIt) {
  service_.set_cancel_each_assignment(false);
  TestDelegate delegate("w1", absl::Milliseconds(200));
  WorkerLink link(Options(), &delegate);
  delegate.set_link(&link);
  absl::Status status;
  std::thread run([&] { status = link.Run(); });
  while (delegate.started_.load() < 1) absl::SleepFor(absl::Milliseconds(1));
  // The first lease runs 200 ms at a 20 ms heartbeat.
  while (delegate.started_.load() < 2) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_GE(service_.counts().heartbeats_with_lease, 3);
  service_.set_cancel_each_assignment(true);
  while (delegate.cancel_callbacks_.load() < 1) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  link.Drain();
  run.join();
  delegate.JoinAll();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_GE(service_.counts().cancel_acks, 1);
  EXPECT_FALSE(delegate.overlapping_.load());
}

TEST_F(WorkerLinkTest, RefusedNameEndsRun) {
  TestDelegate delegate("taken", absl::ZeroDuration());
  WorkerLink link(Options(), &delegate);
  delegate.set_link(&link);
  const absl::Status status = link.Run();
  EXPECT_TRUE(absl::IsAlreadyExists(status)) << status;
  EXPECT_EQ(link.State().connects, 0);
}

TEST_F(WorkerLinkTest, ReconnectsAfterTheServerComesBack) {
  TestDelegate delegate("w1", absl::ZeroDuration());
  WorkerLinkOptions options = Options();
  server_->Shutdown();
  server_.reset();
  // Nothing listens yet: the link retries with backoff.
  WorkerLink link(options, &delegate);
  delegate.set_link(&link);
  absl::Status status;
  std::thread run([&] { status = link.Run(); });
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(link.State().connects, 0);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.channel.target,
                           grpc::InsecureServerCredentials());
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  ASSERT_NE(server_, nullptr);
  while (delegate.started_.load() < 1) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_EQ(link.State().connects, 1);
  link.Drain();
  run.join();
  EXPECT_TRUE(status.ok()) << status;
}

}  // namespace
}  // namespace lvs::rpc
