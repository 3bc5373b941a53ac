// The server-streaming reactor behind GenerateVideo, WatchVideoJob and
// WatchTrainingJob: replays a job's stored events in order, then follows the
// job live until it finishes, and ends with the job's final status (OK after
// Completed, the job's error after a failure, CANCELLED after cancellation,
// NOT_FOUND once the job is deleted). Video chunks are read back from the
// result file; with a `from_offset` the chunks before it are skipped and the
// first one is cut to start at it.
//
// A GenerateVideo stream is created before its job is on disk: it sends
// nothing until Admitted() (then it follows the job) or Refused() (then it
// finishes with that status) is called, from the admission's completion.
//
// One write is in flight at a time and the next events are read from the
// store only when it is done, so a slow client never makes the server buffer
// a whole video. The reactor wakes through EventHub when the job changes,
// and reads the store only then. While the job waits, the hub pushes its
// position whenever the queue moves; a Queued event with the newest position
// is sent when it differs from the last one sent (positions that arrive
// while a write is in flight are coalesced into one event), with no store
// read.
//
// Thread-safety: reactor callbacks and wake-ups may run on any thread; the
// state is guarded by `mu_`; StartWrite/Finish are called outside it.
#ifndef LVS_SERVER_JOB_EVENT_STREAM_H_
#define LVS_SERVER_JOB_EVENT_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/proto_time.h"
#include "server/event_hub.h"
#include "server/job_store.h"
#include "server/rich_status.h"

namespace lvs::server {

// A write reactor that only finishes with a status (a refused call).
template <typename Event>
class RejectedStream : public grpc::ServerWriteReactor<Event> {
 public:
  // Finishes at once with `status`.
  explicit RejectedStream(const grpc::Status& status) { this->Finish(status); }
  // Deletes the reactor.
  void OnDone() override { delete this; }
};

// See the file comment. `Event` is GenerateVideoEvent or TrainingEvent;
// `Wire` is `Event`, or grpc::ByteBuffer for a method registered raw
// (request_parse.h), which gets each event serialized.
template <typename Event, typename Wire = Event>
class JobEventStream : public grpc::ServerWriteReactor<Wire> {
 public:
  // Called with the job's id once if the client cancels the call or its
  // deadline passes (after the job was admitted).
  using CancelFn = std::function<void(const std::string& id)>;

  // Streams job `id` of `kind`.
  JobEventStream(JobStore* store, EventHub* hub, JobKind kind, std::string id,
                 int64_t from_offset, CancelFn on_client_cancel)
      : JobEventStream(store, hub, kind, from_offset,
                       std::move(on_client_cancel)) {
    Admitted(std::move(id));
  }

  // Streams a job of `kind` that is being admitted: see the file comment.
  JobEventStream(JobStore* store, EventHub* hub, JobKind kind,
                 int64_t from_offset, CancelFn on_client_cancel)
      : store_(store),
        hub_(hub),
        kind_(kind),
        from_offset_(from_offset),
        on_client_cancel_(std::move(on_client_cancel)),
        waker_(std::make_shared<Waker>(this)) {}

  // The job is on disk as `id`: follow it.
  void Admitted(std::string id) {
    bool cancel = false;
    {
      absl::MutexLock lock(&mu_);
      id_ = std::move(id);
      started_ = true;
      cancel = cancelled_ && !cancel_ran_;
      cancel_ran_ = cancel_ran_ || cancel;
    }
    hub_->Subscribe(id_, waker_);
    if (cancel && on_client_cancel_) on_client_cancel_(id_);
    Pump();
  }

  // The job was not admitted: finish with `status`.
  void Refused(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      started_ = true;
      finished_ = true;
    }
    this->Finish(status);
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) cancelled_ = true;
    }
    Pump();
  }

  void OnCancel() override {
    bool cancel = false;
    std::string id;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      cancel = started_ && !finished_ && !cancel_ran_;
      cancel_ran_ = cancel_ran_ || cancel;
      id = id_;
    }
    if (cancel && on_client_cancel_) on_client_cancel_(id);
    Pump();
  }

  void OnDone() override {
    if (!id_.empty()) hub_->Unsubscribe(id_, waker_.get());
    waker_->Detach();
    delete this;
  }

 private:
  // The hub's handle; outlives the reactor while a wake-up is running.
  class Waker : public JobSubscriber {
   public:
    explicit Waker(JobEventStream* stream) : stream_(stream) {}
    void Wake() override {
      absl::MutexLock lock(&mu_);
      if (stream_ != nullptr) stream_->OnChanged();
    }
    void Moved(int64_t position) override {
      absl::MutexLock lock(&mu_);
      if (stream_ != nullptr) stream_->OnMoved(position);
    }
    void Detach() {
      absl::MutexLock lock(&mu_);
      stream_ = nullptr;
    }

   private:
    absl::Mutex mu_;
    JobEventStream* stream_ ABSL_GUARDED_BY(mu_);
  };

  // What Pump decided to do once the lock is released.
  enum class Action { kNone, kWrite, kFinish };

  // The job's events or state changed: read them.
  void OnChanged() {
    {
      absl::MutexLock lock(&mu_);
      stale_ = true;
    }
    Pump();
  }

  // The queue moved: the job is now at `position`.
  void OnMoved(int64_t position) {
    {
      absl::MutexLock lock(&mu_);
      pushed_ = position;
    }
    Pump();
  }

  void Pump() {
    Action action = Action::kNone;
    grpc::Status final_status;
    {
      absl::MutexLock lock(&mu_);
      action = Next(&final_status);
    }
    if (action == Action::kWrite) {
      if constexpr (std::is_same_v<Wire, Event>) {
        this->StartWrite(&current_);
      } else {
        grpc::Slice slice(current_.SerializeAsString());
        wire_ = grpc::ByteBuffer(&slice, 1);
        this->StartWrite(&wire_);
      }
    } else if (action == Action::kFinish) {
      this->Finish(final_status);
    }
  }

  Action Next(grpc::Status* final_status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // Before admission the stream has nothing to send, and must not finish:
    // the admission's completion still refers to it.
    if (writing_ || finished_ || !started_) return Action::kNone;
    if (cancelled_) {
      finished_ = true;
      *final_status =
          grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled");
      return Action::kFinish;
    }
    // The store is read only after a change (or to go on after a full
    // batch); a pushed position alone reads nothing. Once a read reaches the
    // end of the log, the job's row tells whether it ended or waits, so a
    // wake-up costs two queries, and none after the writes it caused.
    for (int races = 0; stale_ && pending_.empty() && !ended_ && races < 4;) {
      absl::StatusOr<std::vector<StoredEvent>> events =
          store_->ReadEvents(id_, last_seq_, kReadBatch);
      if (!events.ok()) return Fail(ToGrpc(events.status()), final_status);
      for (StoredEvent& e : *events) {
        last_seq_ = e.seq;
        Event event;
        if (Convert(e, &event)) pending_.push_back(std::move(event));
      }
      const bool full = static_cast<int>(events->size()) == kReadBatch;
      if (full) continue;  // More may follow.
      absl::StatusOr<JobRecord> job = store_->Get(kind_, id_);
      if (job.ok() && job->last_event > last_seq_) {
        ++races;  // Raced with an append: read on.
        continue;
      }
      // Caught up: wait for a wake-up, or end once the events read are sent.
      stale_ = false;
      if (!job.ok() || job->finished()) {
        ended_ = true;
        end_status_ = job.ok() ? FinalStatus(*job) : ToGrpc(job.status());
        break;
      }
      // A job that waits may have moved since its Queued event was logged.
      queued_ = job->state == v1::QUEUED;
      if (queued_) pushed_ = store_->QueuePosition(id_);
    }
    if (pending_.empty() && ended_) return Fail(end_status_, final_status);
    if (pending_.empty()) QueueMoved();
    if (pending_.empty()) return Action::kNone;
    current_ = std::move(pending_.front());
    pending_.pop_front();
    writing_ = true;
    return Action::kWrite;
  }

  // Adds a Queued event with the newest position when a queued job moved
  // since the last Queued event it was sent. It is not logged: its sequence
  // repeats the last logged event's.
  void QueueMoved() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!queued_ || position_ == 0 || pushed_ <= 0 || pushed_ == position_) {
      return;
    }
    position_ = pushed_;
    Event event;
    event.set_job(JobName(kind_, id_));
    event.set_sequence(last_seq_);
    common::ToProto(absl::Now(), event.mutable_time());
    event.mutable_queued()->set_position(static_cast<int32_t>(position_));
    event.mutable_queued()->set_ahead(static_cast<int32_t>(position_ - 1));
    pending_.push_back(std::move(event));
  }

  Action Fail(const grpc::Status& status, grpc::Status* final_status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    finished_ = true;
    *final_status = status;
    return Action::kFinish;
  }

  grpc::Status FinalStatus(const JobRecord& job) const {
    if (job.state == v1::SUCCEEDED) return grpc::Status::OK;
    google::rpc::Status error = job.error.value_or(google::rpc::Status());
    if (error.code() == 0) {
      error.set_code(job.state == v1::CANCELLED ? grpc::StatusCode::CANCELLED
                                                : grpc::StatusCode::UNKNOWN);
      error.set_message(JobName(kind_, job.id) + " did not succeed");
    }
    return ToGrpc(error);
  }

  // Decodes a stored event; false when it is skipped (a chunk before
  // `from_offset_`, or bytes of a discarded attempt).
  bool Convert(const StoredEvent& stored, Event* event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!event->ParseFromString(stored.body)) return false;
    event->set_job(JobName(kind_, id_));
    event->set_sequence(stored.seq);
    // A job waits in the queue from a Queued event to the next event.
    queued_ = event->has_queued();
    if (queued_) position_ = pushed_ = event->queued().position();
    if constexpr (std::is_same_v<Event, v1::GenerateVideoEvent>) {
      if (stored.chunk_offset >= 0) {
        const int64_t end = stored.chunk_offset + stored.chunk_length;
        const int64_t start = std::max(stored.chunk_offset, from_offset_);
        if (end <= start) return false;
        absl::StatusOr<std::string> data =
            store_->ReadResult(id_, start, end - start);
        if (!data.ok() || static_cast<int64_t>(data->size()) != end - start) {
          return false;
        }
        event->mutable_chunk()->set_offset(start);
        event->mutable_chunk()->set_data(*std::move(data));
      }
    }
    return true;
  }

  // Events read per query at most.
  static constexpr int kReadBatch = 16;

  JobStore* const store_;
  EventHub* const hub_;
  const JobKind kind_;
  // Set once by Admitted(), before the stream reads anything.
  std::string id_;
  const int64_t from_offset_;
  const CancelFn on_client_cancel_;
  const std::shared_ptr<Waker> waker_;

  absl::Mutex mu_;
  int64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t position_ ABSL_GUARDED_BY(mu_) = 0;  // Last queue position sent.
  int64_t pushed_ ABSL_GUARDED_BY(mu_) = 0;    // Newest position known.
  bool queued_ ABSL_GUARDED_BY(mu_) = false;   // The job waits in the queue.
  bool stale_ ABSL_GUARDED_BY(mu_) = true;     // Events may be unread.
  // The job ended (or can no longer be read) with `end_status_`: finish once
  // `pending_` is sent.
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status end_status_ ABSL_GUARDED_BY(mu_);
  std::deque<Event> pending_ ABSL_GUARDED_BY(mu_);
  Event current_;          // Owned by the write in flight.
  grpc::ByteBuffer wire_;  // `current_` serialized, when Wire is bytes.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;     // Admitted or refused.
  bool cancel_ran_ ABSL_GUARDED_BY(mu_) = false;  // on_client_cancel_ ran.
};

}  // namespace lvs::server

#endif  // LVS_SERVER_JOB_EVENT_STREAM_H_
