#include "server/store_writer.h"

#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"

namespace lvs::server {

StoreWriter::StoreWriter(SqliteDb* db, StoreWriterOptions options)
    : db_(db),
      options_(std::move(options)),
      commit_delay_(options_.commit_delay) {
  writer_ = std::thread([this] { WriterLoop(); });
  completer_ = std::thread([this] { CompletionLoop(); });
}

StoreWriter::~StoreWriter() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  writer_.join();
  {
    absl::MutexLock lock(&done_mu_);
    done_stopping_ = true;
  }
  completer_.join();
}

absl::Status StoreWriter::Submit(Apply apply, Done done, bool bounded) {
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    return absl::UnavailableError("the job store is shutting down");
  }
  if (bounded && bounded_queued_ >= options_.max_queued) {
    return absl::ResourceExhaustedError(
        "the job store is behind: too many writes are waiting for the disk; "
        "retry later");
  }
  bounded_queued_ += bounded ? 1 : 0;
  ops_.push_back({std::move(apply), std::move(done), false, bounded});
  return absl::OkStatus();
}

absl::Status StoreWriter::Call(Apply apply) {
  absl::Notification committed;
  absl::Status outcome;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      return absl::UnavailableError("the job store is shutting down");
    }
    ops_.push_back({std::move(apply),
                    [&](absl::Status s) {
                      outcome = std::move(s);
                      committed.Notify();
                    },
                    true, false});
  }
  committed.WaitForNotification();
  return outcome;
}

void StoreWriter::Post(std::function<void()> fn) {
  absl::MutexLock lock(&done_mu_);
  completions_.push_back(std::move(fn));
}

void StoreWriter::Flush() {
  (void)Call([] { return absl::OkStatus(); });
  absl::Notification drained;
  Post([&] { drained.Notify(); });
  drained.WaitForNotification();
}

size_t StoreWriter::queued() {
  absl::MutexLock lock(&mu_);
  return ops_.size();
}

void StoreWriter::SetCommitDelay(absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  commit_delay_ = delay;
}

void StoreWriter::WriterLoop() {
  while (true) {
    std::deque<Op> batch;
    absl::Duration delay;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](StoreWriter* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu_) {
            return !w->ops_.empty() || w->stopping_;
          },
          this));
      if (ops_.empty()) return;  // Stopping and drained.
      while (!ops_.empty() && batch.size() < options_.max_batch) {
        if (ops_.front().bounded) --bounded_queued_;
        batch.push_back(std::move(ops_.front()));
        ops_.pop_front();
      }
      delay = commit_delay_;
    }
    if (delay > absl::ZeroDuration()) absl::SleepFor(delay);
    RunBatch(batch);
  }
}

void StoreWriter::RunBatch(std::deque<Op>& batch) {
  std::vector<absl::Status> outcomes(batch.size());
  absl::Status begun = db_->Exec("BEGIN IMMEDIATE");
  bool all_ok = begun.ok();
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!begun.ok()) {
      outcomes[i] = begun;
      continue;
    }
    absl::Status s = db_->Exec("SAVEPOINT op");
    if (s.ok()) {
      s = batch[i].apply();
      absl::Status end =
          db_->Exec(s.ok() ? "RELEASE op" : "ROLLBACK TO op; RELEASE op");
      if (s.ok()) s = end;
    }
    all_ok = all_ok && s.ok();
    outcomes[i] = std::move(s);
  }
  if (begun.ok()) {
    absl::Status committed =
        options_.before_commit ? options_.before_commit() : absl::OkStatus();
    if (committed.ok()) committed = db_->Exec("COMMIT");
    if (!committed.ok()) {
      (void)db_->Exec("ROLLBACK");
      all_ok = false;
      for (absl::Status& s : outcomes) {
        if (s.ok()) s = committed;
      }
    }
  }
  if (options_.after_batch) options_.after_batch(all_ok);
  // Completions are queued before any waiter wakes, so that what a waiter
  // does next (Flush's marker) comes after them; waiters are woken here, not
  // behind the completions, since a waiter may hold a lock that a
  // completion needs.
  {
    absl::MutexLock lock(&done_mu_);
    for (size_t i = 0; i < batch.size(); ++i) {
      Op& op = batch[i];
      if (!op.done || op.inline_done) continue;
      completions_.push_back(
          [done = std::move(op.done), s = outcomes[i]] { done(s); });
    }
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].done && batch[i].inline_done) batch[i].done(outcomes[i]);
  }
}

void StoreWriter::CompletionLoop() {
  while (true) {
    std::function<void()> fn;
    {
      absl::MutexLock lock(&done_mu_);
      done_mu_.Await(absl::Condition(
          +[](StoreWriter* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->done_mu_) {
            return !w->completions_.empty() || w->done_stopping_;
          },
          this));
      if (completions_.empty()) return;
      fn = std::move(completions_.front());
      completions_.pop_front();
    }
    fn();
  }
}

}  // namespace lvs::server
