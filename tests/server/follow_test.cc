// What following a job costs the store: many WatchVideoJob streams on two
// jobs, commits that change one of them, and the store's read counter
// (JobStore::reads()) around each commit. A commit wakes only the followers
// of the jobs it changed, and each of them reads a bounded number of
// queries, whatever else is followed.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/server/server_fixture.h"

namespace lvs::server {
namespace {

namespace v1 = ::lumina::video::v1;
using testing::ScriptedWorker;

class FollowTest : public testing::ServerFixture {
 protected:
  // One WatchVideoJob stream.
  struct Follower {
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReader<v1::GenerateVideoEvent>> reader;

    v1::GenerateVideoEvent Next() {
      v1::GenerateVideoEvent e;
      EXPECT_TRUE(reader->Read(&e));
      return e;
    }
  };

  // `n` followers of job `name`.
  std::vector<Follower> Follow(const std::string& name, int n) {
    std::vector<Follower> out;
    for (int i = 0; i < n; ++i) {
      v1::WatchVideoJobRequest req;
      req.set_name(name);
      Follower f;
      f.ctx = Ctx();
      f.reader = video_->WatchVideoJob(f.ctx.get(), req);
      out.push_back(std::move(f));
    }
    return out;
  }

  static void Stop(std::vector<Follower>& followers) {
    for (Follower& f : followers) f.ctx->TryCancel();
  }
};

// Queries per follower and wake-up: the new events, then the job's state
// (to learn that the log was read to its end and whether the job ended).
constexpr int64_t kReadsPerWake = 2;

TEST_F(FollowTest, ACommitMakesOnlyTheChangedJobsFollowersRead) {
  constexpr int kFollowers = 50;
  StartServer();
  v1::VideoJob a, b;
  ASSERT_TRUE(Create(&a).ok());
  ASSERT_TRUE(Create(&b).ok());
  ScriptedWorker worker(app_->worker_port(), "w1");
  const v1::JobAssignment lease = worker.Lease();
  ASSERT_EQ(lease.job(), a.name());

  // Job A's followers replay its log (Queued, Started).
  std::vector<Follower> on_a = Follow(a.name(), kFollowers);
  for (Follower& f : on_a) {
    EXPECT_TRUE(f.Next().has_queued());
    EXPECT_TRUE(f.Next().has_started());
  }
  // A progress event of A, with only A followed.
  int64_t before = SettledStoreReads();
  worker.Step(lease.lease_id(), 0, 10);
  for (Follower& f : on_a) EXPECT_TRUE(f.Next().has_step());
  const int64_t only_a = SettledStoreReads() - before;
  EXPECT_GE(only_a, kFollowers);  // Each read the new event.
  EXPECT_LE(only_a, kReadsPerWake * kFollowers);

  // Job B gets as many followers (its logged Queued event, at 2, then its
  // position since A left the queue); the same commit on A costs exactly as
  // many reads: B's followers read nothing.
  std::vector<Follower> on_b = Follow(b.name(), kFollowers);
  for (Follower& f : on_b) {
    EXPECT_EQ(f.Next().queued().position(), 2);
    EXPECT_EQ(f.Next().queued().position(), 1);
  }
  before = SettledStoreReads();
  worker.Step(lease.lease_id(), 1, 10);
  for (Follower& f : on_a) EXPECT_EQ(f.Next().step().index(), 1);
  EXPECT_EQ(SettledStoreReads() - before, only_a);

  // A state change of A (it completes): A's followers read its last event
  // and its final state, and end; B's still read nothing.
  before = SettledStoreReads();
  worker.Complete(lease.lease_id());
  for (Follower& f : on_a) {
    EXPECT_TRUE(f.Next().has_completed());
    v1::GenerateVideoEvent e;
    EXPECT_FALSE(f.reader->Read(&e));
    EXPECT_TRUE(f.reader->Finish().ok());
  }
  EXPECT_LE(SettledStoreReads() - before, kReadsPerWake * kFollowers);

  Stop(on_b);
  worker.Close();
}

}  // namespace
}  // namespace lvs::server
