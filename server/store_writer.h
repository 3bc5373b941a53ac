// The job store's one writer thread with group commit. Callers submit
// operations that change the database; the writer runs them in submission
// order, many to a transaction (each in its own savepoint, so one refused
// operation, e.g. a stale lease, does not undo its neighbours), runs the
// `before_commit` hook (the store syncs the result files written in the
// batch), commits once, and only then reports each operation's outcome. An
// operation that was reported OK is on disk.
//
// Outcomes are reported on a completion thread, in submission order, so a
// completion may take other locks (the dispatcher's) without stalling the
// disk. `Call` waits for its own operation; its waiter is woken by the writer
// itself, never behind the completion queue, so it may be used while holding
// a lock that completions need.
//
// Bounds: a bounded submission (admissions) is refused with
// RESOURCE_EXHAUSTED once `max_queued` operations wait; unbounded ones
// (worker messages, which their stream only reads one at a time, and `Call`s,
// which block their thread) always queue.
//
// Thread-safety: thread-safe. Operations run on the writer thread only.
#ifndef LVS_SERVER_STORE_WRITER_H_
#define LVS_SERVER_STORE_WRITER_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/sqlite.h"

namespace lvs::server {

// Fixed behaviour of a writer.
struct StoreWriterOptions {
  // Bounded submissions waiting at most.
  size_t max_queued = 4096;
  // Operations in one transaction at most.
  size_t max_batch = 1024;
  // Runs after the operations of a batch and before COMMIT; an error fails
  // the whole batch (rolled back). The store syncs result files here.
  std::function<absl::Status()> before_commit;
  // Runs on the writer thread after each batch, committed or not (`ok`), and
  // after any operation of it failed (`ok` false too): the store rebuilds
  // its in-memory indexes from the database then.
  std::function<void(bool ok)> after_batch;
  // Added before each commit (tests: a slow disk).
  absl::Duration commit_delay = absl::ZeroDuration();
};

// See the file comment.
class StoreWriter {
 public:
  // Runs on the writer thread inside the batch transaction.
  using Apply = std::function<absl::Status()>;
  // Receives the outcome once the batch is on disk (or failed).
  using Done = std::function<void(absl::Status)>;

  // Starts the threads; `db` must outlive the writer.
  StoreWriter(SqliteDb* db, StoreWriterOptions options);
  // Drains the queue, then stops the threads.
  ~StoreWriter();

  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Queues `apply`; `done` runs on the completion thread. A bounded
  // submission beyond `max_queued` is refused (RESOURCE_EXHAUSTED) and
  // neither function runs.
  absl::Status Submit(Apply apply, Done done, bool bounded);

  // Runs `apply` in the next batch and waits until it is committed.
  absl::Status Call(Apply apply);

  // Runs `fn` on the completion thread after every completion queued so far
  // (commit observers, e.g. coalesced wake-ups).
  void Post(std::function<void()> fn);

  // Waits until everything submitted so far is committed and its completion
  // has run (tests and shutdown).
  void Flush();

  // Operations waiting to be applied (a gauge).
  size_t queued();

  // Changes the delay added before each commit (tests).
  void SetCommitDelay(absl::Duration delay);

 private:
  struct Op {
    Apply apply;
    Done done;
    bool inline_done = false;  // `done` runs on the writer thread.
    bool bounded = false;
  };

  void WriterLoop();
  void CompletionLoop();
  // Applies and commits one batch; returns each operation's outcome.
  void RunBatch(std::deque<Op>& batch);

  SqliteDb* const db_;
  StoreWriterOptions options_;

  absl::Mutex mu_;
  std::deque<Op> ops_ ABSL_GUARDED_BY(mu_);
  size_t bounded_queued_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration commit_delay_ ABSL_GUARDED_BY(mu_);

  absl::Mutex done_mu_;
  std::deque<std::function<void()>> completions_ ABSL_GUARDED_BY(done_mu_);
  bool done_stopping_ ABSL_GUARDED_BY(done_mu_) = false;

  std::thread writer_;
  std::thread completer_;
};

}  // namespace lvs::server

#endif  // LVS_SERVER_STORE_WRITER_H_
