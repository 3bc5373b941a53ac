// Dispatcher without gRPC: fake worker connections record what the server
// sends; a FakeClock drives lease expiry.
#include "server/dispatcher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <future>

#include "tests/server/test_util.h"

namespace lvs::server {
namespace {

using testing::TempDir;

// Sends arrive on the store's completion thread too (assignments go out once
// their lease is on disk); the tests read them after Settle().
class FakeConnection : public WorkerConnection {
 public:
  void Send(const v1::ServerMessage& m) override {
    absl::MutexLock lock(&mu);
    sent.push_back(m);
  }

  // Pops the oldest message of `kind`, failing the test when absent.
  v1::ServerMessage Take(v1::ServerMessage::MessageCase kind) {
    absl::MutexLock lock(&mu);
    for (auto it = sent.begin(); it != sent.end(); ++it) {
      if (it->message_case() == kind) {
        v1::ServerMessage m = *it;
        sent.erase(it);
        return m;
      }
    }
    ADD_FAILURE() << "no message of kind " << kind;
    return {};
  }
  bool Has(v1::ServerMessage::MessageCase kind) {
    absl::MutexLock lock(&mu);
    for (const auto& m : sent) {
      if (m.message_case() == kind) return true;
    }
    return false;
  }

  absl::Mutex mu;
  std::deque<v1::ServerMessage> sent ABSL_GUARDED_BY(mu);
};

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    JobStoreOptions o;
    o.data_dir = dir_.path();
    o.max_attempts = 2;
    o.lease_duration = absl::Seconds(30);
    store_ = *JobStore::Open(o, &clock_);
    dispatcher_ = std::make_unique<Dispatcher>(store_.get(), &clock_, &hub_,
                                               &metrics_, DispatcherOptions{});
  }

  // Waits until the store changes the dispatcher made are committed and
  // their completions ran, including the changes those completions made
  // (a lease round after a release).
  void Settle() {
    for (int i = 0; i < 4; ++i) store_->Flush();
  }

  // Hands `m` to the dispatcher and waits until its store change (written
  // by the store's writer thread) is committed and handled.
  void OnMessage(const std::string& worker, const v1::WorkerMessage& m,
                 const WorkerConnection* connection = nullptr) {
    dispatcher_->OnMessage(worker, m, connection);
    Settle();
  }

  void Tick() {
    dispatcher_->Tick();
    Settle();
  }

  void Unregister(const std::string& worker,
                  const WorkerConnection* connection = nullptr) {
    dispatcher_->Unregister(worker, connection);
    Settle();
  }

  void Connect(const std::string& name, FakeConnection* conn,
               v1::WorkerKind kind = v1::WORKER_KIND_GENERATOR,
               int max_width = 0) {
    v1::RegisterWorker r;
    r.set_name(name);
    r.set_kind(kind);
    r.mutable_capabilities()->set_max_width(max_width);
    ASSERT_TRUE(dispatcher_->Register(r, conn).ok());
    conn->Take(v1::ServerMessage::kRegistered);
    v1::WorkerMessage m;
    m.mutable_lease_request();
    OnMessage(name, m);
  }

  // Admits a video job without dispatching; returns its id.
  std::string Admit(int width = 64, int priority = v1::PRIORITY_NORMAL) {
    v1::GenerateVideoRequest req;
    req.set_prompt("p");
    req.set_width(width);
    NewJob job{JobKind::kVideo, "o", "", priority, req};
    return store_->Admit(job, {})->job.id;
  }

  std::string Submit(int width = 64, int priority = v1::PRIORITY_NORMAL) {
    std::string id = Admit(width, priority);
    dispatcher_->Dispatch();
    Settle();
    return id;
  }

  void Chunk(const std::string& worker, const std::string& lease,
             int64_t offset, const std::string& data) {
    v1::WorkerMessage m;
    m.mutable_job_event()->set_lease_id(lease);
    m.mutable_job_event()->mutable_event()->mutable_chunk()->set_offset(offset);
    m.mutable_job_event()->mutable_event()->mutable_chunk()->set_data(data);
    OnMessage(worker, m);
  }

  void Complete(const std::string& worker, const std::string& lease) {
    v1::WorkerMessage m;
    m.mutable_job_result()->set_lease_id(lease);
    m.mutable_job_result()->mutable_completed()->set_frames(5);
    OnMessage(worker, m);
  }

  JobRecord Job(const std::string& id) {
    return *store_->Get(JobKind::kVideo, id);
  }

  TempDir dir_;
  FakeClock clock_{absl::FromUnixSeconds(1700000000)};
  rpc::MetricsRegistry registry_;
  ServerMetrics metrics_{&registry_};
  EventHub hub_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<Dispatcher> dispatcher_;
};

TEST_F(DispatcherTest, RejectsBadRegistrations) {
  FakeConnection a;
  v1::RegisterWorker r;
  r.set_name("w1");
  r.set_kind(v1::WORKER_KIND_UNSPECIFIED);
  EXPECT_EQ(dispatcher_->Register(r, &a).code(),
            absl::StatusCode::kInvalidArgument);
  r.set_kind(v1::WORKER_KIND_GENERATOR);
  r.set_name("");
  EXPECT_EQ(dispatcher_->Register(r, &a).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(DispatcherTest, ReconnectingNameReplacesTheDeadStream) {
  FakeConnection old_conn, new_conn;
  Connect("w1", &old_conn);
  const std::string id = Submit();
  const std::string lease =
      old_conn.Take(v1::ServerMessage::kAssignment).assignment().lease_id();
  // The process was killed; it restarts before its old stream is noticed
  // but after a lease duration of silence.
  clock_.Advance(absl::Seconds(31));
  v1::RegisterWorker r;
  r.set_name("w1");
  r.set_kind(v1::WORKER_KIND_GENERATOR);
  ASSERT_TRUE(dispatcher_->Register(r, &new_conn).ok());
  Settle();
  EXPECT_EQ(Job(id).state, v1::QUEUED);
  // Whatever the old stream still delivers is ignored, including its end.
  v1::WorkerMessage result;
  result.mutable_job_result()->set_lease_id(lease);
  result.mutable_job_result()->mutable_completed();
  OnMessage("w1", result, &old_conn);
  Unregister("w1", &old_conn);
  EXPECT_EQ(Job(id).state, v1::QUEUED);
  ASSERT_EQ(dispatcher_->ListWorkers().size(), 1u);
  v1::WorkerMessage ask;
  ask.mutable_lease_request();
  OnMessage("w1", ask, &new_conn);
  v1::ServerMessage a = new_conn.Take(v1::ServerMessage::kAssignment);
  EXPECT_EQ(a.assignment().attempt(), 2);
}

TEST_F(DispatcherTest, SecondWorkerUnderALiveNameIsRefused) {
  FakeConnection first, second;
  Connect("w1", &first);
  const std::string id = Submit();
  first.Take(v1::ServerMessage::kAssignment);
  clock_.Advance(absl::Seconds(20));
  v1::WorkerMessage beat;
  beat.mutable_heartbeat();
  OnMessage("w1", beat, &first);
  clock_.Advance(absl::Seconds(20));
  v1::RegisterWorker r;
  r.set_name("w1");
  r.set_kind(v1::WORKER_KIND_GENERATOR);
  const absl::Status s = dispatcher_->Register(r, &second);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_NE(s.message().find("w1"), std::string::npos);
  EXPECT_FALSE(second.Has(v1::ServerMessage::kRegistered));
  // The first keeps its job.
  EXPECT_EQ(Job(id).state, v1::RUNNING);
  ASSERT_EQ(dispatcher_->ListWorkers().size(), 1u);
}

TEST_F(DispatcherTest, LeasesToIdleWorkerAndCompletesOnce) {
  FakeConnection w;
  Connect("w1", &w);
  const std::string id = Submit();
  v1::ServerMessage a = w.Take(v1::ServerMessage::kAssignment);
  EXPECT_EQ(a.assignment().job(), "jobs/" + id);
  EXPECT_EQ(a.assignment().attempt(), 1);
  EXPECT_EQ(a.assignment().request().prompt(), "p");
  const std::string lease = a.assignment().lease_id();
  Chunk("w1", lease, 0, "abc");
  Chunk("w1", lease, 3, "de");
  Complete("w1", lease);
  JobRecord job = Job(id);
  EXPECT_EQ(job.state, v1::SUCCEEDED);
  ASSERT_TRUE(job.completed.has_value());
  const v1::Completed& result = *job.completed;
  EXPECT_EQ(result.size_bytes(), 5);
  EXPECT_EQ(result.video_uri(), "jobs/" + id + "/video.mp4");
  // A repeated result is fenced: the worker is told to drop the lease.
  Complete("w1", lease);
  EXPECT_TRUE(w.Has(v1::ServerMessage::kCancel));
  EXPECT_EQ(Job(id).state, v1::SUCCEEDED);
  EXPECT_EQ(metrics_.jobs_total->Value({"SUCCEEDED"}), 1);
}

TEST_F(DispatcherTest, StepEventsPassTheWorkersThroughputOn) {
  FakeConnection w;
  Connect("w1", &w);
  const std::string id = Submit();
  const std::string lease =
      w.Take(v1::ServerMessage::kAssignment).assignment().lease_id();
  clock_.Advance(absl::Milliseconds(500));
  v1::WorkerMessage m;
  m.mutable_job_event()->set_lease_id(lease);
  m.mutable_job_event()->mutable_event()->mutable_step()->set_index(0);
  m.mutable_job_event()->mutable_event()->mutable_step()->set_total(11);
  m.mutable_job_event()->mutable_event()->mutable_step()->set_it_per_s(1.5f);
  OnMessage("w1", m);
  auto events = store_->ReadEvents(id, 0, 10);
  v1::GenerateVideoEvent step;
  ASSERT_TRUE(step.ParseFromString(events->back().body));
  // The worker's figures, not the server's clock (2 it/s here).
  EXPECT_FLOAT_EQ(step.step().it_per_s(), 1.5f);
  EXPECT_FALSE(step.step().has_eta());
  const v1::VideoJobProgress progress = Job(id).progress;
  EXPECT_EQ(progress.step(), 1);
  EXPECT_EQ(progress.total_steps(), 11);
}

TEST_F(DispatcherTest, OnlyLeasesJobsThatFitTheWorker) {
  FakeConnection small;
  Connect("small", &small, v1::WORKER_KIND_GENERATOR, 128);
  const std::string big = Submit(256);
  EXPECT_FALSE(small.Has(v1::ServerMessage::kAssignment));
  const std::string fits = Submit(128);
  v1::ServerMessage a = small.Take(v1::ServerMessage::kAssignment);
  EXPECT_EQ(a.assignment().job(), "jobs/" + fits);
  EXPECT_EQ(Job(big).state, v1::QUEUED);
}

TEST_F(DispatcherTest, SmallWorkerGetsTheOnlyFittingJobBehindManyThatDoNot) {
  // 299 queued jobs need a bigger worker than the one that connects; job #300
  // fits it and must be leased at once, however deep in the queue it is.
  std::vector<std::string> big;
  for (int i = 0; i < 299; ++i) big.push_back(Submit(256));
  const std::string fits = Submit(128);
  FakeConnection small;
  Connect("small", &small, v1::WORKER_KIND_GENERATOR, 128);
  v1::ServerMessage a = small.Take(v1::ServerMessage::kAssignment);
  EXPECT_EQ(a.assignment().job(), "jobs/" + fits);
  EXPECT_EQ(Job(big.front()).state, v1::QUEUED);
  EXPECT_EQ(Job(big.back()).state, v1::QUEUED);
}

TEST_F(DispatcherTest, ExpiredLeaseMovesJobToAnotherWorkerAndFencesTheOld) {
  FakeConnection w1, w2;
  Connect("w1", &w1);
  const std::string id = Submit();
  const std::string old_lease =
      w1.Take(v1::ServerMessage::kAssignment).assignment().lease_id();
  // Heartbeats keep the lease alive.
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(absl::Seconds(20));
    v1::WorkerMessage hb;
    hb.mutable_heartbeat()->set_lease_id(old_lease);
    OnMessage("w1", hb);
    Tick();
    EXPECT_EQ(Job(id).state, v1::RUNNING);
  }
  // The worker goes silent; a second worker is waiting.
  Connect("w2", &w2);
  clock_.Advance(absl::Seconds(31));
  Tick();
  EXPECT_EQ(w1.Take(v1::ServerMessage::kCancel).cancel().lease_id(), old_lease);
  v1::ServerMessage a = w2.Take(v1::ServerMessage::kAssignment);
  EXPECT_EQ(a.assignment().job(), "jobs/" + id);
  EXPECT_EQ(a.assignment().attempt(), 2);
  // The old worker wakes up and reports: nothing it sends counts.
  Chunk("w1", old_lease, 0, "stale");
  Complete("w1", old_lease);
  EXPECT_EQ(Job(id).state, v1::RUNNING);
  EXPECT_EQ(Job(id).result_bytes, 0);
  Chunk("w2", a.assignment().lease_id(), 0, "fresh");
  Complete("w2", a.assignment().lease_id());
  EXPECT_EQ(Job(id).state, v1::SUCCEEDED);
  EXPECT_EQ(*store_->ReadResult(id, 0, 100), "fresh");
}

TEST_F(DispatcherTest, DisconnectRequeuesThenFailsAfterMaxAttempts) {
  FakeConnection w1, w2;
  Connect("w1", &w1);
  const std::string id = Submit();
  w1.Take(v1::ServerMessage::kAssignment);
  Unregister("w1");
  EXPECT_EQ(Job(id).state, v1::QUEUED);
  Connect("w2", &w2);
  w2.Take(v1::ServerMessage::kAssignment);
  Unregister("w2");
  JobRecord job = Job(id);
  EXPECT_EQ(job.state, v1::FAILED);
  ASSERT_TRUE(job.error.has_value());
  const google::rpc::Status& error = *job.error;
  EXPECT_EQ(error.code(), static_cast<int>(absl::StatusCode::kUnavailable));
  EXPECT_NE(error.message().find("w2 disconnected"), std::string::npos);
}

TEST_F(DispatcherTest, GapInChunkOffsetsEndsTheAttempt) {
  FakeConnection w;
  Connect("w1", &w);
  const std::string id = Submit();
  const std::string lease =
      w.Take(v1::ServerMessage::kAssignment).assignment().lease_id();
  Chunk("w1", lease, 0, "abc");
  Chunk("w1", lease, 7, "xyz");
  EXPECT_EQ(w.Take(v1::ServerMessage::kCancel).cancel().lease_id(), lease);
  JobRecord job = Job(id);
  EXPECT_EQ(job.state, v1::QUEUED);
  EXPECT_EQ(job.attempts, 1);
  EXPECT_EQ(job.result_bytes, 0);
}

TEST_F(DispatcherTest, PermanentErrorFailsWithoutRetry) {
  FakeConnection w;
  Connect("w1", &w);
  const std::string id = Submit();
  const std::string lease =
      w.Take(v1::ServerMessage::kAssignment).assignment().lease_id();
  v1::WorkerMessage m;
  m.mutable_job_result()->set_lease_id(lease);
  m.mutable_job_result()->mutable_error()->set_code(3);
  m.mutable_job_result()->mutable_error()->set_message("frames: too many");
  m.mutable_job_result()->set_permanent(true);
  OnMessage("w1", m);
  EXPECT_EQ(Job(id).state, v1::FAILED);
  EXPECT_EQ(Job(id).attempts, 1);
}

TEST_F(DispatcherTest, CancelReachesTheWorkerAndFreesIt) {
  FakeConnection w;
  Connect("w1", &w);
  const std::string id = Submit();
  const std::string next = Submit();
  const std::string lease =
      w.Take(v1::ServerMessage::kAssignment).assignment().lease_id();
  auto cancelled = testing::Await<CancelResult>([&](auto done) {
    store_->CancelAsync(JobKind::kVideo, id, "", "by user", done);
  });
  ASSERT_TRUE(cancelled.ok());
  dispatcher_->OnCancelled(*cancelled);
  EXPECT_EQ(w.Take(v1::ServerMessage::kCancel).cancel().lease_id(), lease);
  v1::WorkerMessage ack;
  ack.mutable_cancel_ack()->set_lease_id(lease);
  OnMessage("w1", ack);
  v1::WorkerMessage ask;
  ask.mutable_lease_request();
  OnMessage("w1", ask);
  EXPECT_EQ(w.Take(v1::ServerMessage::kAssignment).assignment().job(),
            "jobs/" + next);
  EXPECT_EQ(Job(id).state, v1::CANCELLED);
}

TEST_F(DispatcherTest, ALeaseIsSentOnlyOnceOnDiskAndNothingWaitsForIt) {
  FakeConnection w;
  Connect("w1", &w);
  const std::string id = Admit();
  store_->SetCommitDelay(absl::Milliseconds(300));
  dispatcher_->Dispatch();
  // Dispatch returned, and the dispatcher answers, while the lease waits
  // for its commit; the worker has heard nothing yet.
  EXPECT_EQ(dispatcher_->BusyWorkers(), 0);
  EXPECT_FALSE(w.Has(v1::ServerMessage::kAssignment));
  store_->SetCommitDelay(absl::ZeroDuration());
  Settle();
  EXPECT_EQ(w.Take(v1::ServerMessage::kAssignment).assignment().job(),
            "jobs/" + id);
  EXPECT_EQ(dispatcher_->BusyWorkers(), 1);
}

TEST_F(DispatcherTest, AWorkerThatLeavesBeforeItsLeaseIsOnDiskCostsNoAttempt) {
  FakeConnection w;
  Connect("w1", &w);
  const std::string id = Admit();
  store_->SetCommitDelay(absl::Milliseconds(200));
  dispatcher_->Dispatch();
  dispatcher_->Unregister("w1");
  store_->SetCommitDelay(absl::ZeroDuration());
  Settle();
  EXPECT_FALSE(w.Has(v1::ServerMessage::kAssignment));
  const JobRecord job = Job(id);
  EXPECT_EQ(job.state, v1::QUEUED);
  EXPECT_EQ(job.attempts, 0);
  // The next worker gets it as a first attempt.
  FakeConnection w2;
  Connect("w2", &w2);
  EXPECT_EQ(w2.Take(v1::ServerMessage::kAssignment).assignment().attempt(), 1);
}

TEST_F(DispatcherTest, ALeaseThatCannotBeWrittenLeavesTheJobQueued) {
  FakeConnection w;
  Connect("w1", &w);
  const std::string id = Admit();
  store_->SetCommitError(absl::UnavailableError("disk gone"));
  dispatcher_->Dispatch();
  Settle();
  EXPECT_FALSE(w.Has(v1::ServerMessage::kAssignment));
  EXPECT_EQ(Job(id).state, v1::QUEUED);
  EXPECT_EQ(Job(id).attempts, 0);
  EXPECT_EQ(dispatcher_->ListWorkers()[0].state(), v1::WORKER_STATE_IDLE);
  // The disk is back: the next tick leases it.
  store_->SetCommitError(absl::OkStatus());
  Tick();
  v1::ServerMessage a = w.Take(v1::ServerMessage::kAssignment);
  EXPECT_EQ(a.assignment().job(), "jobs/" + id);
  EXPECT_EQ(a.assignment().attempt(), 1);
}

TEST_F(DispatcherTest, ACompletionThatCannotBeWrittenFreesTheWorkerAndExpires) {
  FakeConnection w;
  Connect("w1", &w);
  const std::string id = Submit();
  const std::string lease =
      w.Take(v1::ServerMessage::kAssignment).assignment().lease_id();
  store_->SetCommitError(absl::InternalError("disk full"));
  Complete("w1", lease);
  // Neither the completion nor the release reached the disk: the worker is
  // told to drop the lease and is free; the job stays RUNNING in the store.
  EXPECT_EQ(w.Take(v1::ServerMessage::kCancel).cancel().lease_id(), lease);
  EXPECT_EQ(dispatcher_->ListWorkers()[0].state(), v1::WORKER_STATE_IDLE);
  EXPECT_EQ(dispatcher_->BusyWorkers(), 0);
  store_->SetCommitError(absl::OkStatus());
  EXPECT_EQ(Job(id).state, v1::RUNNING);
  v1::WorkerMessage ask;
  ask.mutable_lease_request();
  OnMessage("w1", ask);
  EXPECT_FALSE(w.Has(v1::ServerMessage::kAssignment));
  // Its lease expires and the job runs again.
  clock_.Advance(absl::Seconds(31));
  Tick();
  v1::ServerMessage a = w.Take(v1::ServerMessage::kAssignment);
  EXPECT_EQ(a.assignment().job(), "jobs/" + id);
  EXPECT_EQ(a.assignment().attempt(), 2);
  Complete("w1", a.assignment().lease_id());
  EXPECT_EQ(Job(id).state, v1::SUCCEEDED);
}

TEST_F(DispatcherTest, LeasingStopsWhileDraining) {
  FakeConnection w;
  Connect("w1", &w);
  dispatcher_->SetLeasing(false);
  Submit();
  EXPECT_FALSE(w.Has(v1::ServerMessage::kAssignment));
  dispatcher_->SetLeasing(true);
  Settle();
  EXPECT_TRUE(w.Has(v1::ServerMessage::kAssignment));
}

TEST_F(DispatcherTest, TrainingJobResumesFromLastCheckpoint) {
  FakeConnection t1, t2, gen;
  Connect("gen", &gen);
  Connect("t1", &t1, v1::WORKER_KIND_TRAINER);
  v1::TrainingJobSpec spec;
  spec.set_max_steps(10);
  NewJob job{JobKind::kTraining, "admin", "", v1::PRIORITY_NORMAL, {}, spec};
  const std::string id = store_->Admit(job, {})->job.id;
  dispatcher_->Dispatch();
  Settle();
  EXPECT_FALSE(gen.Has(v1::ServerMessage::kTrainingAssignment));
  v1::ServerMessage a = t1.Take(v1::ServerMessage::kTrainingAssignment);
  EXPECT_FALSE(a.training_assignment().has_resume_from());
  v1::WorkerMessage report;
  report.mutable_training_report()->set_lease_id(
      a.training_assignment().lease_id());
  auto* ckpt =
      report.mutable_training_report()->mutable_event()->mutable_checkpoint();
  ckpt->set_step(4);
  ckpt->set_path("/ckpt/4");
  OnMessage("t1", report);
  Unregister("t1");
  Connect("t2", &t2, v1::WORKER_KIND_TRAINER);
  v1::ServerMessage b = t2.Take(v1::ServerMessage::kTrainingAssignment);
  EXPECT_EQ(b.training_assignment().resume_from().step(), 4);
  EXPECT_EQ(b.training_assignment().resume_from().path(), "/ckpt/4");
  v1::WorkerMessage done;
  done.mutable_training_result()->set_lease_id(
      b.training_assignment().lease_id());
  done.mutable_training_result()->mutable_completed()->set_steps(10);
  OnMessage("t2", done);
  EXPECT_EQ(store_->Get(JobKind::kTraining, id)->state, v1::SUCCEEDED);
}

TEST_F(DispatcherTest, ReloadAnswersOnceEveryWorkerReplied) {
  FakeConnection a, b;
  Connect("a", &a);
  Connect("b", &b);
  std::optional<v1::ReloadModelResponse> answer;
  ASSERT_TRUE(
      dispatcher_
          ->Reload({}, "/ckpt", true, "",
                   [&](const v1::ReloadModelResponse& r) { answer = r; })
          .ok());
  const std::string reload_id =
      a.Take(v1::ServerMessage::kReload).reload().reload_id();
  EXPECT_EQ(b.Take(v1::ServerMessage::kReload).reload().checkpoint(), "/ckpt");
  v1::WorkerMessage m;
  m.mutable_reload_result()->set_reload_id(reload_id);
  m.mutable_reload_result()->set_model_version("v2");
  OnMessage("a", m);
  EXPECT_FALSE(answer.has_value());
  Unregister("b");
  ASSERT_TRUE(answer.has_value());
  ASSERT_EQ(answer->results_size(), 2);
  EXPECT_EQ(answer->results(0).model_version(), "v2");
  EXPECT_EQ(answer->results(1).status().code(),
            static_cast<int>(absl::StatusCode::kUnavailable));
  EXPECT_EQ(dispatcher_->ListWorkers()[0].capabilities().model_version(), "v2");
}

TEST_F(DispatcherTest, ReloadAnswerRunsWithoutTheDispatcherLock) {
  FakeConnection a;
  Connect("a", &a);
  // The answer asks the dispatcher for its workers from another thread; it
  // gets them only if the answer does not run under the dispatcher's lock.
  std::future<size_t> listed;
  bool lock_free = false;
  ASSERT_TRUE(dispatcher_
                  ->Reload({}, "/ckpt", false, "",
                           [&](const v1::ReloadModelResponse&) {
                             listed = std::async(std::launch::async, [&] {
                               return dispatcher_->ListWorkers().size();
                             });
                             lock_free =
                                 listed.wait_for(std::chrono::seconds(2)) ==
                                 std::future_status::ready;
                           })
                  .ok());
  v1::WorkerMessage m;
  m.mutable_reload_result()->set_reload_id(
      a.Take(v1::ServerMessage::kReload).reload().reload_id());
  m.mutable_reload_result()->set_model_version("v2");
  OnMessage("a", m);
  EXPECT_TRUE(lock_free);
  ASSERT_TRUE(listed.valid());
  EXPECT_EQ(listed.get(), 1u);
}

TEST_F(DispatcherTest, WorkersGaugeCountsGeneratorsAndTrainersApart) {
  FakeConnection g, t;
  Connect("g", &g);
  Connect("t", &t, v1::WORKER_KIND_TRAINER);
  registry_.Render();
  EXPECT_EQ(metrics_.workers->Value({"generator", "idle"}), 1);
  EXPECT_EQ(metrics_.workers->Value({"trainer", "idle"}), 1);
  Unregister("g");
  registry_.Render();
  EXPECT_EQ(metrics_.workers->Value({"generator", "idle"}), 0);
  EXPECT_EQ(metrics_.workers->Value({"trainer", "idle"}), 1);
}

}  // namespace
}  // namespace lvs::server
