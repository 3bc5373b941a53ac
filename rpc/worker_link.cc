#include "rpc/worker_link.h"

#include <algorithm>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/proto_time.h"

namespace lvs::rpc {

namespace pb = ::lumina::video::v1;

// One open stream. The reader thread owns Read(); writes from any thread are
// serialised by `mu_`.
class LinkStream {
 public:
  // Opens the stream with `stub`, sending the worker token.
  LinkStream(pb::WorkerService::Stub* stub, const std::string& token) {
    PrepareContext(&context_, absl::ZeroDuration(), "x-lvs-worker-token",
                   token);
    stream_ = stub->Connect(&context_);
  }

  // Sends `message`; false once the stream is closed or half-closed.
  bool Write(const pb::WorkerMessage& message) {
    absl::MutexLock lock(&mu_);
    if (closed_ || half_closed_) return false;
    if (!stream_->Write(message)) {
      closed_ = true;
      return false;
    }
    return true;
  }

  // Half-closes the stream (no more writes; the server then ends it).
  void WritesDone() {
    absl::MutexLock lock(&mu_);
    if (closed_ || half_closed_) return;
    half_closed_ = true;
    stream_->WritesDone();
  }

  bool open() const {
    absl::MutexLock lock(&mu_);
    return !closed_ && !half_closed_;
  }

  // Reads the next message (reader thread only).
  bool Read(pb::ServerMessage* message) { return stream_->Read(message); }

  // Marks the stream closed (no more writes) and wakes the heartbeat.
  void MarkClosed() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }

  // Aborts the call from any thread.
  void Cancel() { context_.TryCancel(); }

  // Waits until closed or `timeout` passes; returns whether it is closed.
  bool WaitClosed(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto closed = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return closed_; };
    mu_.AwaitWithTimeout(absl::Condition(&closed), timeout);
    return closed_;
  }

  // Ends the call and returns its status (after Read returned false).
  grpc::Status Finish() { return stream_->Finish(); }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<pb::WorkerMessage, pb::ServerMessage>>
      stream_;
  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool half_closed_ ABSL_GUARDED_BY(mu_) = false;
};

Lease::Lease(std::string id, std::string job,
             std::shared_ptr<LinkStream> stream)
    : id_(std::move(id)), job_(std::move(job)), stream_(std::move(stream)) {}

bool Lease::stream_open() const { return stream_->open(); }

bool Lease::Send(const pb::WorkerMessage& message) const {
  return stream_->Write(message);
}

void Lease::OnCancel(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  if (cancelled()) {
    fn();
    return;
  }
  on_cancel_ = std::move(fn);
}

void Lease::Cancel() {
  absl::MutexLock lock(&mu_);
  if (cancelled_.exchange(true, std::memory_order_acq_rel)) return;
  if (on_cancel_) on_cancel_();
}

void WorkerLink::Delegate::OnReload(const pb::ReloadModelCommand& reload,
                                    Reply reply) {
  pb::WorkerMessage m;
  m.mutable_reload_result()->set_reload_id(reload.reload_id());
  m.mutable_reload_result()->mutable_status()->set_code(
      static_cast<int>(absl::StatusCode::kFailedPrecondition));
  m.mutable_reload_result()->mutable_status()->set_message(
      "this process serves no model");
  reply(m);
}

WorkerLink::WorkerLink(WorkerLinkOptions options, Delegate* delegate)
    : options_(std::move(options)), delegate_(delegate) {}

WorkerLink::~WorkerLink() = default;

LinkState WorkerLink::State() const {
  absl::MutexLock lock(&mu_);
  LinkState s;
  s.connected = connected_;
  s.busy = lease_ != nullptr;
  s.draining = draining_;
  s.connects = connects_;
  return s;
}

void WorkerLink::SetAssignmentHookForTesting(std::function<void()> hook) {
  absl::MutexLock lock(&mu_);
  assignment_hook_ = std::move(hook);
}

void WorkerLink::Drain() {
  std::shared_ptr<LinkStream> stream;
  {
    absl::MutexLock lock(&mu_);
    if (draining_) return;
    draining_ = true;
    if (lease_ != nullptr) {
      common::LogEvent("drain", {{"state", "busy"}, {"job_id", lease_->job()}});
      return;  // Finish() closes the stream.
    }
    stream = stream_;
  }
  common::LogEvent("drain", {{"state", "idle"}});
  if (stream != nullptr) stream->WritesDone();
}

void WorkerLink::Finish(const std::shared_ptr<Lease>& lease) {
  bool draining = false;
  {
    absl::MutexLock lock(&mu_);
    if (lease_ != lease) return;  // Already released.
    lease_.reset();
    draining = draining_;
  }
  // The lease's stream: a lease never outlives the stream it came on (a new
  // stream waits in ReleaseStream until the old lease finished).
  pb::WorkerMessage next;
  next.mutable_lease_request();
  if (draining) {
    common::LogEvent("drain", {{"state", "idle"}});
    lease->stream_->WritesDone();
  } else {
    lease->Send(next);
  }
}

absl::Status WorkerLink::Run() {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      MakeChannel(options_.channel);
  if (!channel.ok()) return channel.status();
  stub_ = pb::WorkerService::NewStub(*channel);
  absl::Duration backoff = options_.backoff_initial;
  std::mt19937_64 rng(std::random_device{}());
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (draining_) break;
    }
    bool registered = false;
    const absl::Status status = ServeStream(&registered);
    if (absl::IsAlreadyExists(status)) return status;
    {
      absl::MutexLock lock(&mu_);
      if (draining_) break;
    }
    if (registered) backoff = options_.backoff_initial;
    // Jitter: wait uniformly in [backoff/2, backoff], so that processes
    // that lost the same server do not reconnect in step.
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    const absl::Duration wait = backoff * jitter(rng);
    common::LogEvent("disconnected",
                     {{"status", status.ToString()},
                      {"retry_in_s", absl::ToDoubleSeconds(wait)}});
    absl::MutexLock lock(&mu_);
    auto draining = [this]()
                        ABSL_SHARED_LOCKS_REQUIRED(mu_) { return draining_; };
    mu_.AwaitWithTimeout(absl::Condition(&draining), wait);
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
  common::LogEvent("drained");
  return absl::OkStatus();
}

absl::Status WorkerLink::ServeStream(bool* registered) {
  auto stream = std::make_shared<LinkStream>(stub_.get(), options_.token);
  pb::WorkerMessage hello;
  *hello.mutable_register_() = delegate_->Registration();
  name_ = hello.register_().name();
  pb::ServerMessage first;
  stream->Write(hello);  // A failed write shows in Read, Finish.
  const bool read = stream->Read(&first);
  if (!read || !first.has_registered()) {
    stream->MarkClosed();
    if (read) stream->Cancel();  // Not the protocol: drop the call.
    const grpc::Status s = stream->Finish();
    if (s.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
      // Another live process holds the name: retrying cannot help.
      return absl::AlreadyExistsError(
          absl::StrCat("registration refused: ", DescribeStatus(s),
                       "; give this process another --name"));
    }
    std::string hint;
    if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      hint = absl::StrCat("; ", options_.channel.target,
                          " does not serve WorkerService: --server must be "
                          "the server's worker port (its --worker-listen, "
                          "default 50052), not the client port");
    } else if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
      hint = absl::StrCat("; is lvs-server running with --worker-listen=",
                          options_.channel.target, "?");
    }
    return absl::UnavailableError(
        absl::StrCat("registration failed: ", DescribeStatus(s), hint));
  }
  *registered = true;
  absl::Duration heartbeat =
      common::FromProto(first.registered().heartbeat_interval());
  if (heartbeat <= absl::ZeroDuration()) heartbeat = kDefaultHeartbeatInterval;
  common::LogEvent("registered",
                   {{"heartbeat_s", absl::ToDoubleSeconds(heartbeat)}});
  bool draining = false;
  {
    absl::MutexLock lock(&mu_);
    stream_ = stream;
    ++connects_;
    connected_ = true;
    draining = draining_;
  }
  delegate_->OnConnected(true);
  std::thread heartbeats(
      [this, stream, heartbeat] { HeartbeatLoop(stream, heartbeat); });
  if (draining) {
    // Drained while registering: close at once.
    stream->WritesDone();
  } else {
    pb::WorkerMessage lease;
    lease.mutable_lease_request();
    stream->Write(lease);
  }
  pb::ServerMessage message;
  while (stream->Read(&message)) Dispatch(stream, message);
  stream->MarkClosed();
  ReleaseStream();
  heartbeats.join();
  delegate_->OnConnected(false);
  const grpc::Status s = stream->Finish();
  if (s.ok()) return absl::OkStatus();
  return absl::UnavailableError(DescribeStatus(s));
}

void WorkerLink::ReleaseStream() {
  // The stream is gone, and with it every lease it carried: the server
  // re-queues the job.
  absl::MutexLock lock(&mu_);
  stream_.reset();
  connected_ = false;
  if (lease_ != nullptr) lease_->Cancel();
  auto idle = [this]()
                  ABSL_SHARED_LOCKS_REQUIRED(mu_) { return lease_ == nullptr; };
  mu_.Await(absl::Condition(&idle));
}

void WorkerLink::Dispatch(const std::shared_ptr<LinkStream>& stream,
                          const pb::ServerMessage& message) {
  switch (message.message_case()) {
    case pb::ServerMessage::kAssignment:
    case pb::ServerMessage::kTrainingAssignment:
      TakeAssignment(stream, message);
      return;
    case pb::ServerMessage::kCancel: {
      absl::MutexLock lock(&mu_);
      if (lease_ != nullptr && lease_->id() == message.cancel().lease_id()) {
        common::LogEvent("cancel", {{"job_id", lease_->job()},
                                    {"lease", lease_->id()},
                                    {"reason", message.cancel().reason()}});
        lease_->Cancel();
      }
      return;
    }
    case pb::ServerMessage::kReload:
      delegate_->OnReload(
          message.reload(),
          [stream](const pb::WorkerMessage& m) { return stream->Write(m); });
      return;
    case pb::ServerMessage::kDrain:
      Drain();
      return;
    default:
      return;
  }
}

void WorkerLink::TakeAssignment(const std::shared_ptr<LinkStream>& stream,
                                const pb::ServerMessage& message) {
  const bool training = message.has_training_assignment();
  const std::string& lease_id = training
                                    ? message.training_assignment().lease_id()
                                    : message.assignment().lease_id();
  const std::string& job = training ? message.training_assignment().job()
                                    : message.assignment().job();
  std::function<void()> hook;
  {
    absl::MutexLock lock(&mu_);
    hook = assignment_hook_;
  }
  if (hook) hook();
  std::shared_ptr<Lease> lease;
  {
    // One lease at a time, and none once draining: decided under the lock
    // Drain() takes, so a drain either sees this lease or refuses it.
    absl::MutexLock lock(&mu_);
    if (!draining_ && lease_ == nullptr) {
      lease = std::make_shared<Lease>(lease_id, job, stream);
      lease_ = lease;
    }
  }
  if (lease == nullptr) {
    // Never asked for: drop the call; the server re-queues the job when the
    // stream ends.
    common::LogWarning("refused", {{"job_id", job}, {"lease", lease_id}});
    stream->Cancel();
    return;
  }
  delegate_->StartLease(message, std::move(lease));
}

void WorkerLink::HeartbeatLoop(std::shared_ptr<LinkStream> stream,
                               absl::Duration every) {
  while (!stream->WaitClosed(every)) {
    pb::WorkerMessage beat;
    {
      absl::MutexLock lock(&mu_);
      if (lease_ != nullptr)
        beat.mutable_heartbeat()->set_lease_id(lease_->id());
    }
    delegate_->FillHeartbeat(beat.mutable_heartbeat());
    if (!stream->Write(beat)) break;
  }
  // Half-closed by a drain: give the server a moment to end the call.
  if (!stream->WaitClosed(options_.close_grace)) stream->Cancel();
}

}  // namespace lvs::rpc
