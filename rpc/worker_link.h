// The dial-in client of every process that serves the front server's
// WorkerService (lvs-worker and lvs-trainer): one bidirectional stream with
// the `x-lvs-worker-token` metadata, registration, heartbeats at the
// interval the server hands out, lease requests whenever idle, CancelJob and
// DrainCommand handling, and reconnection with jittered exponential backoff
// when the server goes away.
//
// The link keeps the lease bookkeeping: which lease is running, whether it
// was cancelled, whether the process drains. All of it sits under one lock,
// so a drain and an arriving assignment are ordered: either the assignment
// is taken first (and the drain waits for it to finish) or the drain is
// first (and the assignment is refused; the server re-queues the job when
// the stream ends). No lease starts after Drain() returns.
//
// The owner (Delegate) runs leased work on its own thread: StartLease hands
// it over and returns at once; the owner sends progress and the final
// message with Lease::Send, then calls WorkerLink::Finish. The link then
// asks for the next lease, or closes the stream when draining.
//
// Thread-safety: Run() is called once, from one thread (it becomes the
// stream's reader). Drain(), Finish(), State() and Lease methods are safe
// from any thread. Delegate methods are called without the link's lock held.
#ifndef LVS_RPC_WORKER_LINK_H_
#define LVS_RPC_WORKER_LINK_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lumina/video/v1/worker_service.grpc.pb.h"
#include "rpc/channel.h"

namespace lvs::rpc {

// Settings of a link.
struct WorkerLinkOptions {
  // The server's worker port and TLS files.
  ChannelOptions channel;
  // Shared worker token sent as `x-lvs-worker-token` (may be empty).
  std::string token;
  // Reconnect backoff: doubles from `backoff_initial` up to `backoff_max`;
  // each wait is drawn uniformly in [backoff/2, backoff].
  absl::Duration backoff_initial = absl::Milliseconds(100);
  absl::Duration backoff_max = absl::Seconds(5);
  // How long a drained link waits for the server to end the stream after
  // half-closing it before cancelling the call.
  absl::Duration close_grace = absl::Seconds(5);
};

// Heartbeat interval when the server's Registered names none.
inline constexpr absl::Duration kDefaultHeartbeatInterval = absl::Seconds(2);

// One open stream to the server (opaque to owners): writes from any thread
// are serialised.
class LinkStream;

// One leased job: its ids, its cancellation and the stream it came on.
class Lease {
 public:
  Lease(std::string id, std::string job, std::shared_ptr<LinkStream> stream);

  const std::string& id() const { return id_; }
  // The job's resource name ("videos/…", "training/…").
  const std::string& job() const { return job_; }

  // Whether the server cancelled the job or the stream carrying it ended.
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  // Whether the stream carrying the lease is still open (false: the server
  // has re-queued the job; nothing sent now arrives).
  bool stream_open() const;

  // Sends `message` on the lease's stream; false once it is closed.
  bool Send(const lumina::video::v1::WorkerMessage& message) const;

  // Runs `fn` when the lease is cancelled (at once if it already is). `fn`
  // must be quick and must not call back into the link. One callback.
  void OnCancel(std::function<void()> fn);

  // Cancels the lease (idempotent). Called by the link.
  void Cancel();

 private:
  friend class WorkerLink;

  const std::string id_;
  const std::string job_;
  const std::shared_ptr<LinkStream> stream_;
  std::atomic<bool> cancelled_{false};
  absl::Mutex mu_;
  std::function<void()> on_cancel_ ABSL_GUARDED_BY(mu_);
};

// Sends replies (reload results) on the stream a command came on.
using Reply = std::function<bool(const lumina::video::v1::WorkerMessage&)>;

// What the link reports; see WorkerLink::State().
struct LinkState {
  bool connected = false;  // Registered on an open stream.
  bool busy = false;       // A lease is running.
  bool draining = false;
  int64_t connects = 0;  // Successful registrations so far.
};

// See the file comment.
class WorkerLink {
 public:
  // The process behind the link.
  class Delegate {
   public:
    virtual ~Delegate() = default;
    // The registration sent on each new stream (name, kind, capabilities).
    virtual lumina::video::v1::RegisterWorker Registration() = 0;
    // Takes over a lease (a JobAssignment or TrainingAssignment in
    // `assignment`) and returns at once; the owner later calls Finish.
    virtual void StartLease(const lumina::video::v1::ServerMessage& assignment,
                            std::shared_ptr<Lease> lease) = 0;
    // A reload command; the default answers FAILED_PRECONDITION (the
    // process serves no model). Must not block: queue the work and answer
    // through `reply`.
    virtual void OnReload(const lumina::video::v1::ReloadModelCommand& reload,
                          Reply reply);
    // Adds the owner's fields (memory in use) to a heartbeat.
    virtual void FillHeartbeat(lumina::video::v1::Heartbeat* beat) {}
    // The link registered (true) or lost its stream (false).
    virtual void OnConnected(bool connected) {}
  };

  // Serves `delegate` (not owned; outlives the link).
  WorkerLink(WorkerLinkOptions options, Delegate* delegate);
  ~WorkerLink();

  WorkerLink(const WorkerLink&) = delete;
  WorkerLink& operator=(const WorkerLink&) = delete;

  // Connects and serves until drained: OK after a drain, ALREADY_EXISTS
  // when the server refuses the name (retrying cannot help), an
  // INVALID_ARGUMENT when the channel options are unusable.
  absl::Status Run();

  // Finishes the running lease, takes no more and makes Run() return.
  void Drain();

  // The owner is done with `lease` (its final message sent): asks for the
  // next lease, or closes the stream when draining.
  void Finish(const std::shared_ptr<Lease>& lease);

  LinkState State() const;

  // Test seam: runs on the reader thread when an assignment has been read,
  // before the link decides whether to take it.
  void SetAssignmentHookForTesting(std::function<void()> hook);

 private:
  // Runs one stream until it ends; `registered` tells whether it got past
  // registration.
  absl::Status ServeStream(bool* registered);
  // Handles one message from the server (reader thread).
  void Dispatch(const std::shared_ptr<LinkStream>& stream,
                const lumina::video::v1::ServerMessage& message);
  void TakeAssignment(const std::shared_ptr<LinkStream>& stream,
                      const lumina::video::v1::ServerMessage& message);
  // After the stream ended: cancels the lease and waits until it finished.
  void ReleaseStream();
  // Sends a heartbeat every `every` until the stream closes.
  void HeartbeatLoop(std::shared_ptr<LinkStream> stream, absl::Duration every);

  const WorkerLinkOptions options_;
  Delegate* const delegate_;
  std::string name_;  // From the first Registration(); for logs.
  std::unique_ptr<lumina::video::v1::WorkerService::Stub> stub_;

  mutable absl::Mutex mu_;
  std::shared_ptr<LinkStream> stream_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<Lease> lease_ ABSL_GUARDED_BY(mu_);
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  int64_t connects_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void()> assignment_hook_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lvs::rpc

#endif  // LVS_RPC_WORKER_LINK_H_
