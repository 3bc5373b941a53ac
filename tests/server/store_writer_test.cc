// The job store's writer thread: group commit, order, failures that
// acknowledge nothing, bounded submissions, durability of acknowledged
// admissions across a crash, the transition table, and a slow disk that
// does not hold up worker messages or admissions.
#include "server/store_writer.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "server/dispatcher.h"
#include "server/job_store.h"
#include "tests/server/test_util.h"

namespace lvs::server {
namespace {

using testing::TempDir;

class StoreWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = *SqliteDb::Open(dir_.path() + "/w.db");
    ASSERT_TRUE(db_->Exec("PRAGMA journal_mode=WAL").ok());
    ASSERT_TRUE(db_->Exec("CREATE TABLE t(v INTEGER)").ok());
  }

  absl::Status InsertRow(int64_t v) {
    absl::StatusOr<SqliteStmt> st = db_->Prepare("INSERT INTO t(v) VALUES(?)");
    if (!st.ok()) return st.status();
    st->Bind(1, v);
    return st->Run();
  }

  std::vector<int64_t> Rows() {
    std::unique_ptr<SqliteDb> reader = *SqliteDb::Open(dir_.path() + "/w.db");
    SqliteStmt st = *reader->Prepare("SELECT v FROM t ORDER BY rowid");
    std::vector<int64_t> out;
    while (*st.Step()) out.push_back(st.Int(0));
    return out;
  }

  TempDir dir_;
  std::unique_ptr<SqliteDb> db_;
};

TEST_F(StoreWriterTest, GroupsWaitingChangesIntoOneCommitAndReportsInOrder) {
  std::atomic<int> commits{0};
  StoreWriterOptions options;
  options.before_commit = [&] {
    commits.fetch_add(1);
    return absl::OkStatus();
  };
  StoreWriter writer(db_.get(), options);
  // Hold the writer so that the next changes wait together.
  absl::Notification release;
  ASSERT_TRUE(writer
                  .Submit(
                      [&] {
                        release.WaitForNotification();
                        return absl::OkStatus();
                      },
                      nullptr, false)
                  .ok());
  std::vector<int64_t> reported;
  absl::Mutex mu;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(writer
                    .Submit([this, i] { return InsertRow(i); },
                            [&, i](absl::Status s) {
                              EXPECT_TRUE(s.ok()) << s;
                              absl::MutexLock lock(&mu);
                              reported.push_back(i);
                            },
                            true)
                    .ok());
  }
  release.Notify();
  writer.Flush();
  std::vector<int64_t> expected;
  for (int i = 0; i < 100; ++i) expected.push_back(i);
  EXPECT_EQ(reported, expected);
  EXPECT_EQ(Rows(), expected);
  // The held change's batch, one for the 100, one for Flush's marker.
  EXPECT_LE(commits.load(), 3);
}

TEST_F(StoreWriterTest, AFailedCommitAcknowledgesNothing) {
  std::atomic<bool> fail{true};
  StoreWriterOptions options;
  options.before_commit = [&] {
    return fail.load() ? absl::InternalError("cannot sync: disk full")
                       : absl::OkStatus();
  };
  bool rebuilt = false;
  options.after_batch = [&](bool ok) { rebuilt = rebuilt || !ok; };
  StoreWriter writer(db_.get(), options);
  absl::Status first = writer.Call([this] { return InsertRow(1); });
  EXPECT_EQ(first.code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(Rows().empty());
  EXPECT_TRUE(rebuilt);
  fail = false;
  EXPECT_TRUE(writer.Call([this] { return InsertRow(2); }).ok());
  EXPECT_EQ(Rows(), std::vector<int64_t>{2});
}

TEST_F(StoreWriterTest, ARefusedChangeDoesNotUndoItsNeighbours) {
  StoreWriter writer(db_.get(), StoreWriterOptions());
  absl::Notification release;
  ASSERT_TRUE(writer
                  .Submit(
                      [&] {
                        release.WaitForNotification();
                        return absl::OkStatus();
                      },
                      nullptr, false)
                  .ok());
  std::vector<absl::StatusCode> codes(3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(writer
                    .Submit(
                        [this, i]() -> absl::Status {
                          absl::Status s = InsertRow(i);
                          if (i == 1) {
                            return absl::FailedPreconditionError("stale lease");
                          }
                          return s;
                        },
                        [&, i](absl::Status s) { codes[i] = s.code(); }, false)
                    .ok());
  }
  release.Notify();
  writer.Flush();
  EXPECT_EQ(codes[0], absl::StatusCode::kOk);
  EXPECT_EQ(codes[1], absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(codes[2], absl::StatusCode::kOk);
  EXPECT_EQ(Rows(), (std::vector<int64_t>{0, 2}));
}

TEST_F(StoreWriterTest, BoundedSubmissionsBeyondTheLimitAreRefused) {
  StoreWriterOptions options;
  options.max_queued = 2;
  StoreWriter writer(db_.get(), options);
  absl::Notification release, holding;
  ASSERT_TRUE(writer
                  .Submit(
                      [&] {
                        holding.Notify();
                        release.WaitForNotification();
                        return absl::OkStatus();
                      },
                      nullptr, false)
                  .ok());
  holding.WaitForNotification();
  auto ok = [] { return absl::OkStatus(); };
  EXPECT_TRUE(writer.Submit(ok, nullptr, true).ok());
  EXPECT_TRUE(writer.Submit(ok, nullptr, true).ok());
  EXPECT_EQ(writer.Submit(ok, nullptr, true).code(),
            absl::StatusCode::kResourceExhausted);
  // Worker messages are bounded by their streams, not here.
  EXPECT_TRUE(writer.Submit(ok, nullptr, false).ok());
  release.Notify();
  writer.Flush();
  EXPECT_TRUE(writer.Submit(ok, nullptr, true).ok());
}

NewJob VideoJob(const std::string& prompt) {
  v1::GenerateVideoRequest req;
  req.set_prompt(prompt);
  return NewJob{JobKind::kVideo, "alice", "", v1::PRIORITY_NORMAL, req};
}

TEST(JobStoreDurabilityTest, AcknowledgedAdmissionsSurviveACrash) {
  TempDir dir;
  JobStoreOptions options;
  options.data_dir = dir.path();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Admits without waiting, writes each acknowledged id to the pipe, and
    // dies without any clean-up once 200 were acknowledged.
    close(fds[0]);
    RealClock clock;
    std::unique_ptr<JobStore> store = *JobStore::Open(options, &clock);
    std::atomic<int> acked{0};
    for (int i = 0; i < 400; ++i) {
      (void)store->AdmitAsync(VideoJob(absl::StrCat("p", i)), AdmitLimits(),
                              [&](absl::StatusOr<AdmitResult> r) {
                                if (!r.ok()) return;
                                const std::string line = r->job.id + "\n";
                                (void)!write(fds[1], line.data(), line.size());
                                if (acked.fetch_add(1) + 1 == 200) _exit(0);
                              });
    }
    absl::SleepFor(absl::Seconds(30));
    _exit(1);
  }
  close(fds[1]);
  std::string ids;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) ids.append(buf, n);
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::vector<std::string> acked = absl::StrSplit(ids, '\n', absl::SkipEmpty());
  ASSERT_GE(acked.size(), 200u);
  RealClock clock;
  std::unique_ptr<JobStore> store = *JobStore::Open(options, &clock);
  for (const std::string& id : acked) {
    absl::StatusOr<JobRecord> job = store->Get(JobKind::kVideo, id);
    ASSERT_TRUE(job.ok()) << id << ": " << job.status();
    EXPECT_EQ(job->state, v1::QUEUED);
  }
}

TEST(JobStoreWriterTest, AFailedChunkWriteIsReportedAndNotStored) {
  TempDir dir;
  JobStoreOptions options;
  options.data_dir = dir.path();
  RealClock clock;
  std::unique_ptr<JobStore> store = *JobStore::Open(options, &clock);
  const std::string id = store->Admit(VideoJob("p"), {})->job.id;
  std::optional<JobRecord> leased =
      *store->LeaseNext(JobKind::kVideo, "w1", LeaseFilter());
  ASSERT_TRUE(leased.has_value());
  // The result file cannot be written: a directory stands in its place.
  std::filesystem::create_directories(dir.path() + "/results/" + id + ".mp4");
  absl::Notification reported;
  absl::Status outcome;
  store->AppendChunkAsync(id, leased->lease_id, 0, "abc", "",
                          [&](absl::StatusOr<int64_t> seq) {
                            outcome = seq.status();
                            reported.Notify();
                          });
  reported.WaitForNotification();
  EXPECT_FALSE(outcome.ok());
  std::vector<StoredEvent> events = *store->ReadEvents(id, 0, 100);
  for (const StoredEvent& e : events) EXPECT_EQ(e.chunk_offset, -1);
}

TEST(JobTransitionTest, OnlyTheTableEdgesAreAllowed) {
  const v1::JobState states[] = {v1::QUEUED, v1::RUNNING, v1::SUCCEEDED,
                                 v1::FAILED, v1::CANCELLED};
  const std::set<std::pair<int, int>> legal = {
      {v1::QUEUED, v1::RUNNING}, {v1::QUEUED, v1::CANCELLED},
      {v1::RUNNING, v1::QUEUED}, {v1::RUNNING, v1::SUCCEEDED},
      {v1::RUNNING, v1::FAILED}, {v1::RUNNING, v1::CANCELLED}};
  for (v1::JobState from : states) {
    for (v1::JobState to : states) {
      const absl::Status s = CheckTransition(from, to);
      if (legal.count({from, to}) > 0) {
        EXPECT_TRUE(s.ok()) << s;
      } else {
        EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition)
            << v1::JobState_Name(from) << " -> " << v1::JobState_Name(to);
      }
    }
  }
}

class FakeConnection : public WorkerConnection {
 public:
  void Send(const v1::ServerMessage& m) override {
    absl::MutexLock lock(&mu);
    sent.push_back(m);
  }
  std::string LeaseId() {
    absl::MutexLock lock(&mu);
    for (const auto& m : sent) {
      if (m.has_assignment()) return m.assignment().lease_id();
    }
    return "";
  }
  absl::Mutex mu;
  std::vector<v1::ServerMessage> sent;
};

TEST(SlowDiskTest, WorkerMessagesAndAdmissionsDoNotWaitForTheDisk) {
  TempDir dir;
  JobStoreOptions options;
  options.data_dir = dir.path();
  RealClock clock;
  std::unique_ptr<JobStore> store = *JobStore::Open(options, &clock);
  rpc::MetricsRegistry registry;
  ServerMetrics metrics(&registry);
  EventHub hub;
  Dispatcher dispatcher(store.get(), &clock, &hub, &metrics,
                        DispatcherOptions());
  FakeConnection conn;
  v1::RegisterWorker r;
  r.set_name("w1");
  r.set_kind(v1::WORKER_KIND_GENERATOR);
  ASSERT_TRUE(dispatcher.Register(r, &conn).ok());
  v1::WorkerMessage want;
  want.mutable_lease_request();
  dispatcher.OnMessage("w1", want);
  (void)store->Admit(VideoJob("p"), {});
  dispatcher.Dispatch();
  // The assignment goes out once the lease is on disk (after the lease
  // round that the lease request started).
  for (int i = 0; i < 4; ++i) store->Flush();
  const std::string lease = conn.LeaseId();
  ASSERT_FALSE(lease.empty());

  // Every commit now takes 2 s.
  store->SetCommitDelay(absl::Seconds(2));
  std::atomic<int> read_next{0};
  v1::WorkerMessage heartbeat;
  heartbeat.mutable_heartbeat()->set_lease_id(lease);
  dispatcher.OnMessage("w1", heartbeat, &conn, [&] { read_next.fetch_add(1); });
  v1::WorkerMessage chunk;
  chunk.mutable_job_event()->set_lease_id(lease);
  chunk.mutable_job_event()->mutable_event()->mutable_chunk()->set_data("abc");
  dispatcher.OnMessage("w1", chunk, &conn, [&] { read_next.fetch_add(1); });
  std::atomic<bool> admitted{false};
  ASSERT_TRUE(store
                  ->AdmitAsync(VideoJob("q"), AdmitLimits(),
                               [&](absl::StatusOr<AdmitResult> a) {
                                 EXPECT_TRUE(a.ok()) << a.status();
                                 admitted = true;
                               })
                  .ok());
  // All three calls returned while their commits are still pending: the
  // streams read their next message only once their change is on disk.
  EXPECT_EQ(read_next.load(), 0);
  EXPECT_FALSE(admitted.load());
  store->SetCommitDelay(absl::ZeroDuration());
  store->Flush();
  EXPECT_EQ(read_next.load(), 2);
  EXPECT_TRUE(admitted.load());
  EXPECT_EQ(store->Get(JobKind::kVideo, store->List({})->front().id)->state,
            v1::QUEUED);
  std::vector<StoredEvent> events =
      *store->ReadEvents(store->List({})->back().id, 0, 100);
  EXPECT_EQ(events.back().chunk_length, 3);
}

}  // namespace
}  // namespace lvs::server
