// JobStore: durability across reopen, priorities and FIFO, lease expiry with a
// fake clock, fencing by lease id, idempotency, limits, pagination, chunks,
// cancellation and garbage collection.
#include "server/job_store.h"

#include <gtest/gtest.h>

#include "tests/server/test_util.h"

namespace lvs::server {
namespace {

using testing::Await;
using testing::AwaitStatus;
using testing::TempDir;

class JobStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<JobStore> Open() {
    auto store = JobStore::Open(options_, &clock_);
    EXPECT_TRUE(store.ok()) << store.status();
    return std::move(store).value();
  }

  JobRecord Admit(JobStore& store, int priority, const std::string& prompt,
                  const std::string& owner = "alice",
                  const std::string& request_id = "") {
    v1::GenerateVideoRequest req;
    req.set_prompt(prompt);
    NewJob job{JobKind::kVideo, owner, request_id, priority, req};
    auto result = store.Admit(job, limits_);
    EXPECT_TRUE(result.ok()) << result.status();
    return result->job;
  }

  static std::string Prompt(const JobRecord& job) {
    return job.request.prompt();
  }

  static LeaseFilter AcceptAll() { return LeaseFilter(); }

  std::string Lease(JobStore& store, const std::string& worker = "w1") {
    auto leased = store.LeaseNext(JobKind::kVideo, worker, AcceptAll());
    EXPECT_TRUE(leased.ok()) << leased.status();
    return leased->has_value() ? Prompt(**leased) : "";
  }

  TempDir dir_;
  FakeClock clock_{absl::FromUnixSeconds(1700000000)};
  JobStoreOptions options_{dir_.path(), absl::Hours(1), 2, absl::Seconds(30)};
  AdmitLimits limits_;
};

TEST_F(JobStoreTest, JobsSurviveReopenAndRunningOnesAreRequeued) {
  {
    auto store = Open();
    Admit(*store, v1::PRIORITY_NORMAL, "a");
    Admit(*store, v1::PRIORITY_NORMAL, "b");
    EXPECT_EQ(Lease(*store), "a");
  }
  auto store = Open();
  EXPECT_EQ(*store->CountState(JobKind::kVideo, v1::QUEUED), 2);
  EXPECT_EQ(*store->CountState(JobKind::kVideo, v1::RUNNING), 0);
  // The re-queued job keeps its place and its attempt was not used up.
  auto leased = store->LeaseNext(JobKind::kVideo, "w2", AcceptAll());
  ASSERT_TRUE(leased.ok() && leased->has_value());
  EXPECT_EQ(Prompt(**leased), "a");
  EXPECT_EQ((*leased)->attempts, 1);
  // Its log says why it was re-queued.
  auto events = store->ReadEvents((*leased)->id, 0, 100);
  ASSERT_TRUE(events.ok());
  bool requeued = false;
  for (const StoredEvent& e : *events) {
    v1::GenerateVideoEvent ev;
    ASSERT_TRUE(ev.ParseFromString(e.body));
    if (ev.has_requeued()) {
      requeued = true;
      EXPECT_EQ(ev.requeued().reason(), "server restarted");
    }
  }
  EXPECT_TRUE(requeued);
}

TEST_F(JobStoreTest, HigherPriorityFirstThenFifo) {
  auto store = Open();
  Admit(*store, v1::PRIORITY_NORMAL, "n1");
  Admit(*store, v1::PRIORITY_LOW, "l1");
  JobRecord h1 = Admit(*store, v1::PRIORITY_HIGH, "h1");
  Admit(*store, v1::PRIORITY_NORMAL, "n2");
  Admit(*store, v1::PRIORITY_HIGH, "h2");
  EXPECT_EQ(*store->QueuePosition(*store->Get(JobKind::kVideo, h1.id)), 1);
  for (const char* want : {"h1", "h2", "n1", "n2", "l1"}) {
    EXPECT_EQ(Lease(*store), want);
  }
  EXPECT_EQ(Lease(*store), "");
}

TEST_F(JobStoreTest, ExpiredLeaseRequeuesThenFailsAfterMaxAttempts) {
  auto store = Open();
  JobRecord job = Admit(*store, v1::PRIORITY_NORMAL, "a");
  EXPECT_EQ(Lease(*store), "a");
  clock_.Advance(absl::Seconds(29));
  EXPECT_TRUE(store->ExpireLeases()->empty());
  clock_.Advance(absl::Seconds(2));
  auto changed = store->ExpireLeases();
  ASSERT_TRUE(changed.ok());
  ASSERT_EQ(changed->size(), 1u);
  EXPECT_EQ((*changed)[0].state, v1::QUEUED);
  EXPECT_EQ((*changed)[0].attempts, 1);

  EXPECT_EQ(Lease(*store), "a");
  clock_.Advance(absl::Seconds(31));
  changed = store->ExpireLeases();
  ASSERT_EQ(changed->size(), 1u);
  EXPECT_EQ((*changed)[0].state, v1::FAILED);
  ASSERT_TRUE((*changed)[0].error.has_value());
  const google::rpc::Status& error = *(*changed)[0].error;
  EXPECT_NE(error.message().find("no attempts left"), std::string::npos);
}

TEST_F(JobStoreTest, RenewedLeaseDoesNotExpire) {
  auto store = Open();
  JobRecord job = Admit(*store, v1::PRIORITY_NORMAL, "a");
  auto leased = store->LeaseNext(JobKind::kVideo, "w", AcceptAll());
  const std::string lease = (*leased)->lease_id;
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Seconds(20));
    ASSERT_TRUE(store->Renew(job.id, lease).ok());
    EXPECT_TRUE(store->ExpireLeases()->empty());
  }
}

TEST_F(JobStoreTest, StaleLeaseIsFenced) {
  auto store = Open();
  JobRecord job = Admit(*store, v1::PRIORITY_NORMAL, "a");
  auto first = store->LeaseNext(JobKind::kVideo, "w1", AcceptAll());
  const std::string stale = (*first)->lease_id;
  clock_.Advance(absl::Minutes(1));
  ASSERT_EQ(store->ExpireLeases()->size(), 1u);
  auto second = store->LeaseNext(JobKind::kVideo, "w2", AcceptAll());
  const std::string current = (*second)->lease_id;
  ASSERT_NE(stale, current);

  EXPECT_EQ(store->Renew(job.id, stale).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->AppendChunk(job.id, stale, 0, "xx", "").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->Complete(job.id, stale, "", "").status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto done = store->Complete(job.id, current, "", "");
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, v1::SUCCEEDED);
  // Never completed twice, and a late failure report changes nothing.
  EXPECT_EQ(store->Complete(job.id, current, "", "").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->Release(job.id, current, {}, false).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->Get(JobKind::kVideo, job.id)->state, v1::SUCCEEDED);
}

TEST_F(JobStoreTest, RequestIdIsIdempotentPerOwner) {
  auto store = Open();
  JobRecord a = Admit(*store, v1::PRIORITY_NORMAL, "a", "alice", "r-1");
  JobRecord again = Admit(*store, v1::PRIORITY_NORMAL, "other", "alice", "r-1");
  JobRecord bob = Admit(*store, v1::PRIORITY_NORMAL, "a", "bob", "r-1");
  EXPECT_EQ(a.id, again.id);
  EXPECT_EQ(Prompt(again), "a");
  EXPECT_NE(a.id, bob.id);
  EXPECT_EQ(*store->CountState(JobKind::kVideo, v1::QUEUED), 2);
}

TEST_F(JobStoreTest, LimitsAreCheckedOnAdmission) {
  auto store = Open();
  v1::GenerateVideoRequest req;
  NewJob job{JobKind::kVideo, "alice", "", v1::PRIORITY_NORMAL, req};
  AdmitLimits limits{3, 2, 0};
  EXPECT_EQ(store->Admit(job, limits)->outcome, AdmitOutcome::kCreated);
  EXPECT_EQ(store->Admit(job, limits)->outcome, AdmitOutcome::kCreated);
  auto third = store->Admit(job, limits);
  EXPECT_EQ(third->outcome, AdmitOutcome::kOwnerActiveFull);
  EXPECT_EQ(third->limit, 2);
  job.owner = "bob";
  EXPECT_EQ(store->Admit(job, limits)->outcome, AdmitOutcome::kCreated);
  EXPECT_EQ(store->Admit(job, limits)->outcome, AdmitOutcome::kQueueFull);
}

TEST_F(JobStoreTest, ListPagesNewestFirstWithStateFilter) {
  auto store = Open();
  for (int i = 0; i < 5; ++i)
    Admit(*store, v1::PRIORITY_NORMAL, std::to_string(i));
  EXPECT_EQ(Lease(*store), "0");
  ListQuery q;
  q.limit = 2;
  auto page1 = store->List(q);
  ASSERT_EQ(page1->size(), 2u);
  EXPECT_EQ(Prompt((*page1)[0]), "4");
  q.before_seq = page1->back().seq;
  auto page2 = store->List(q);
  ASSERT_EQ(page2->size(), 2u);
  EXPECT_EQ(Prompt((*page2)[0]), "2");
  q.state = v1::RUNNING;
  q.before_seq = 0;
  auto running = store->List(q);
  ASSERT_EQ(running->size(), 1u);
  EXPECT_EQ(Prompt((*running)[0]), "0");
  q.state = v1::JOB_STATE_UNSPECIFIED;
  q.owner = "nobody";
  EXPECT_TRUE(store->List(q)->empty());
}

TEST_F(JobStoreTest, ChunksAreContiguousAndDiscardedOnRequeue) {
  auto store = Open();
  JobRecord job = Admit(*store, v1::PRIORITY_NORMAL, "a");
  auto leased = store->LeaseNext(JobKind::kVideo, "w", AcceptAll());
  const std::string lease = (*leased)->lease_id;
  ASSERT_TRUE(store->AppendChunk(job.id, lease, 0, "abc", "").ok());
  EXPECT_EQ(store->AppendChunk(job.id, lease, 5, "zz", "").status().code(),
            absl::StatusCode::kOutOfRange);
  ASSERT_TRUE(store->AppendChunk(job.id, lease, 3, "defg", "").ok());
  EXPECT_EQ(*store->ReadResult(job.id, 2, 100), "cdefg");
  auto events = store->ReadEvents(job.id, 0, 100);
  ASSERT_EQ(events->size(), 4u);  // Queued, Started, two chunks.
  EXPECT_EQ((*events)[3].chunk_offset, 3);
  EXPECT_EQ((*events)[3].chunk_length, 4);

  google::rpc::Status error;
  error.set_message("worker lost");
  auto released = store->Release(job.id, lease, error, false);
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(released->state, v1::QUEUED);
  EXPECT_EQ(released->result_bytes, 0);
  events = store->ReadEvents(job.id, 0, 100);
  ASSERT_EQ(events->size(), 2u);  // Requeued, Queued; sequences go on.
  EXPECT_GT((*events)[0].seq, 4);
}

TEST_F(JobStoreTest, CancelDeleteAndTtl) {
  auto store = Open();
  auto cancel = [&](const std::string& id, const std::string& owner,
                    const std::string& reason) {
    return Await<CancelResult>([&](auto done) {
      store->CancelAsync(JobKind::kVideo, id, owner, reason, done);
    });
  };
  auto remove = [&](const std::string& id, const std::string& owner) {
    return AwaitStatus([&](auto done) {
      store->DeleteAsync(JobKind::kVideo, id, owner, done);
    });
  };
  JobRecord queued = Admit(*store, v1::PRIORITY_NORMAL, "a");
  JobRecord running = Admit(*store, v1::PRIORITY_NORMAL, "b");
  EXPECT_EQ(remove(queued.id, "").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(cancel(queued.id, "bob", "x").status().code(),
            absl::StatusCode::kNotFound);
  auto c1 = cancel(queued.id, "alice", "by user");
  ASSERT_TRUE(c1.ok());
  EXPECT_EQ(c1->job.state, v1::CANCELLED);
  EXPECT_TRUE(c1->revoked_lease.empty());
  auto leased = store->LeaseNext(JobKind::kVideo, "w", AcceptAll());
  auto c2 = cancel(running.id, "", "by user");
  EXPECT_EQ(c2->revoked_lease, (*leased)->lease_id);
  EXPECT_EQ(c2->worker, "w");
  EXPECT_EQ(cancel(running.id, "", "x").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(remove(queued.id, "bob").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(remove(queued.id, "alice").ok());
  EXPECT_EQ(store->Get(JobKind::kVideo, queued.id).status().code(),
            absl::StatusCode::kNotFound);
  // The result TTL (1 h here) removes the other finished job.
  clock_.Advance(absl::Minutes(59));
  EXPECT_TRUE(store->CollectGarbage()->empty());
  clock_.Advance(absl::Minutes(2));
  auto gone = store->CollectGarbage();
  ASSERT_EQ(gone->size(), 1u);
  EXPECT_EQ((*gone)[0], running.id);
}

TEST_F(JobStoreTest, QuotaEvictsOldestFinishedResults) {
  options_.results_quota_bytes = 10;
  auto store = Open();
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    JobRecord job = Admit(*store, v1::PRIORITY_NORMAL, "a");
    auto leased = store->LeaseNext(JobKind::kVideo, "w", AcceptAll());
    ASSERT_TRUE(store
                    ->AppendChunk(job.id, (*leased)->lease_id, 0,
                                  std::string(6, 'x'), "")
                    .ok());
    ASSERT_TRUE(store->Complete(job.id, (*leased)->lease_id, "", "").ok());
    clock_.Advance(absl::Seconds(1));
    ids.push_back(job.id);
  }
  auto gone = store->CollectGarbage();
  ASSERT_EQ(gone->size(), 2u);
  EXPECT_EQ((*gone)[0], ids[0]);
  EXPECT_EQ((*gone)[1], ids[1]);
  EXPECT_TRUE(store->Get(JobKind::kVideo, ids[2]).ok());
}

TEST(JobNameTest, ParsesOnlyWellFormedNames) {
  EXPECT_EQ(*ParseJobName(JobKind::kVideo, "jobs/abc123", "name"), "abc123");
  EXPECT_FALSE(ParseJobName(JobKind::kVideo, "jobs/", "name").ok());
  EXPECT_FALSE(ParseJobName(JobKind::kVideo, "jobs/a/b", "name").ok());
  EXPECT_FALSE(ParseJobName(JobKind::kTraining, "jobs/abc", "name").ok());
  EXPECT_EQ(*ParseJobName(JobKind::kTraining, "trainingJobs/x1", "name"), "x1");
}

TEST_F(JobStoreTest, LeaseMatchesModelAndSizeInTheQuery) {
  auto store = Open();
  auto admit = [&](const std::string& model, int width, int frames) {
    v1::GenerateVideoRequest req;
    req.set_prompt(model + std::to_string(width));
    req.set_model(model);
    req.set_width(width);
    req.set_frames(frames);
    NewJob job{JobKind::kVideo, "alice", "", v1::PRIORITY_NORMAL, req};
    ASSERT_TRUE(store->Admit(job, limits_).ok());
  };
  admit("other", 64, 8);
  admit("lumina", 512, 8);
  admit("lumina", 64, 64);
  admit("", 64, 8);
  admit("lumina", 64, 8);
  LeaseFilter filter;
  filter.models = {"lumina", "lumina-hd"};
  filter.max_width = 256;
  filter.max_frames = 16;
  auto lease = [&] {
    auto leased = store->LeaseNext(JobKind::kVideo, "w", filter);
    EXPECT_TRUE(leased.ok()) << leased.status();
    return leased->has_value() ? Prompt(**leased) : "none";
  };
  EXPECT_EQ(lease(), "64");  // No model named: any worker.
  EXPECT_EQ(lease(), "lumina64");
  EXPECT_EQ(lease(), "none");
  filter = LeaseFilter();  // No limits, no models: only unnamed-model jobs.
  EXPECT_EQ(lease(), "none");
  filter.models = {"other"};
  EXPECT_EQ(lease(), "other64");
}

TEST_F(JobStoreTest, CapabilityColumnsAreAddedToAnOlderDatabase) {
  {
    auto store = Open();
    v1::GenerateVideoRequest req;
    req.set_prompt("wide");
    req.set_width(512);
    NewJob job{JobKind::kVideo, "alice", "", v1::PRIORITY_NORMAL, req};
    ASSERT_TRUE(store->Admit(job, limits_).ok());
  }
  {
    // The schema before the capability columns.
    auto db = SqliteDb::Open(dir_.path() + "/lvs.db");
    ASSERT_TRUE(db.ok()) << db.status();
    for (const char* column : {"model", "width", "height", "frames"}) {
      ASSERT_TRUE(
          (*db)
              ->Exec(std::string("ALTER TABLE jobs DROP COLUMN ") + column)
              .ok());
    }
  }
  auto store = Open();
  LeaseFilter narrow;
  narrow.max_width = 256;
  auto none = store->LeaseNext(JobKind::kVideo, "w", narrow);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
  auto leased = store->LeaseNext(JobKind::kVideo, "w", LeaseFilter());
  ASSERT_TRUE(leased.ok()) << leased.status();
  ASSERT_TRUE(leased->has_value());
  EXPECT_EQ(Prompt(**leased), "wide");
}

}  // namespace
}  // namespace lvs::server
