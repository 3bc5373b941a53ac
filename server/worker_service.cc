#include "server/worker_service.h"

#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/rich_status.h"

namespace lvs::server {
namespace {

using Reactor = grpc::ServerBidiReactor<v1::WorkerMessage, v1::ServerMessage>;

// A stream refused before registration.
class RejectedWorker : public Reactor {
 public:
  explicit RejectedWorker(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

// One connected worker; see the file comment of worker_service.h.
class WorkerStream : public Reactor, public WorkerConnection {
 public:
  explicit WorkerStream(Dispatcher* dispatcher) : dispatcher_(dispatcher) {
    StartRead(&in_);
  }

  void Send(const v1::ServerMessage& message) override {
    const v1::ServerMessage* first = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (closing_) return;
      out_.push_back(message);  // References to queued messages stay valid.
      if (writing_) return;
      writing_ = true;
      first = &out_.front();
    }
    StartWrite(first);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Close(grpc::Status::OK);
      return;
    }
    if (name_.empty()) {
      if (!in_.has_register_()) {
        Close(ToGrpc(absl::FailedPreconditionError(
            "the first message of a worker stream must be register")));
        return;
      }
      absl::Status registered = dispatcher_->Register(in_.register_(), this);
      if (!registered.ok()) {
        Close(ToGrpc(registered));
        return;
      }
      name_ = in_.register_().name();
    } else {
      // The next read starts once the message is stored: a worker that
      // streams faster than the disk commits waits (flow control).
      dispatcher_->OnMessage(name_, in_, this, [this] { StartRead(&in_); });
      return;
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    const v1::ServerMessage* next = nullptr;
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      out_.pop_front();
      if (!ok) out_.clear();
      if (!out_.empty()) {
        next = &out_.front();
      } else {
        writing_ = false;
        finish = closing_ && !finished_;
        if (finish) finished_ = true;
      }
    }
    if (next != nullptr) StartWrite(next);
    if (finish) Finish(final_status_);
  }

  void OnDone() override {
    Unregister();
    delete this;
  }

 private:
  void Unregister() {
    if (!name_.empty()) {
      dispatcher_->Unregister(name_, this);
      name_.clear();
    }
  }

  // Stops taking messages from the dispatcher, flushes what is queued, then
  // finishes with `status`.
  void Close(const grpc::Status& status) {
    Unregister();
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      if (closing_) return;
      closing_ = true;
      final_status_ = status;
      finish = !writing_;
      if (finish) finished_ = true;
    }
    if (finish) Finish(status);
  }

  Dispatcher* const dispatcher_;
  std::string name_;  // Set once registered; used by the read path only.
  v1::WorkerMessage in_;
  absl::Mutex mu_;
  std::deque<v1::ServerMessage> out_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_;
};

}  // namespace

WorkerServiceImpl::WorkerServiceImpl(ServiceContext* shared)
    : shared_(shared) {}

Reactor* WorkerServiceImpl::Connect(grpc::CallbackServerContext* ctx) {
  if (!shared_->ready) {
    return new RejectedWorker(ToGrpc(
        absl::UnavailableError("the server is starting: the job store is "
                               "not open yet")));
  }
  absl::Status auth = shared_->credentials->AuthenticateWorker(MetadataOf(ctx));
  if (!auth.ok()) return new RejectedWorker(ToGrpc(auth));
  return new WorkerStream(shared_->dispatcher);
}

}  // namespace lvs::server
