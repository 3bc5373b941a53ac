// Tests of the CLI's JobFollower: chunks land at their offsets, a gap is
// DATA_LOSS, a re-queue restarts the file, a resume continues a partial
// file, the output appears only on completion, and Follow() reads a whole
// call, stopping at a local error.
#include "client/job_follower.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace lvs::client {
namespace {

namespace pb = ::lumina::video::v1;

std::string TempPath(const std::string& name) {
  return std::string(::testing::TempDir()) + "/" + name + "-" +
         std::to_string(getpid());
}

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

pb::GenerateVideoEvent Chunk(int64_t offset, const std::string& data) {
  pb::GenerateVideoEvent e;
  e.set_job("jobs/j1");
  e.mutable_chunk()->set_offset(offset);
  e.mutable_chunk()->set_data(data);
  return e;
}

pb::GenerateVideoEvent Completed(int64_t size) {
  pb::GenerateVideoEvent e;
  e.mutable_completed()->set_size_bytes(size);
  e.mutable_completed()->set_frames(9);
  return e;
}

// A call's stream: hands out `events`, then ends with `end`.
class FakeReader : public grpc::ClientReaderInterface<pb::GenerateVideoEvent> {
 public:
  FakeReader(std::vector<pb::GenerateVideoEvent> events, grpc::Status end)
      : events_(std::move(events)), end_(std::move(end)) {}

  bool NextMessageSize(uint32_t* size) override {
    if (next_ >= events_.size()) return false;
    *size = static_cast<uint32_t>(events_[next_].ByteSizeLong());
    return true;
  }
  bool Read(pb::GenerateVideoEvent* event) override {
    if (next_ >= events_.size()) return false;
    *event = events_[next_++];
    return true;
  }
  void WaitForInitialMetadata() override {}
  grpc::Status Finish() override {
    ++finished_;
    return end_;
  }

  size_t read() const { return next_; }
  int finished() const { return finished_; }

 private:
  std::vector<pb::GenerateVideoEvent> events_;
  grpc::Status end_;
  size_t next_ = 0;
  int finished_ = 0;
};

TEST(JobFollowerTest, WritesChunksAndRenamesOnCompletion) {
  const std::string out = TempPath("a.mp4");
  auto f = JobFollower::Create(out, 0, nullptr);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_TRUE((*f)->Consume(Chunk(0, "hello ")).ok());
  ASSERT_TRUE((*f)->Consume(Chunk(6, "world")).ok());
  EXPECT_FALSE(Exists(out));
  ASSERT_TRUE((*f)->Consume(Completed(11)).ok());
  ASSERT_TRUE((*f)->Finish().ok());
  EXPECT_EQ(Read(out), "hello world");
  EXPECT_EQ((*f)->job(), "jobs/j1");
  EXPECT_EQ((*f)->result().frames(), 9);
  EXPECT_FALSE(Exists(out + ".part"));
  unlink(out.c_str());
}

TEST(JobFollowerTest, AGapIsDataLoss) {
  auto f = JobFollower::Create(TempPath("b.mp4"), 0, nullptr);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Consume(Chunk(0, "abc")).ok());
  EXPECT_EQ((*f)->Consume(Chunk(4, "e")).code(), absl::StatusCode::kDataLoss);
  unlink((TempPath("b.mp4") + ".part").c_str());
}

TEST(JobFollowerTest, ASizeMismatchIsDataLoss) {
  auto f = JobFollower::Create("", 0, nullptr);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Consume(Chunk(0, "abc")).ok());
  ASSERT_TRUE((*f)->Consume(Completed(4)).ok());
  EXPECT_EQ((*f)->Finish().code(), absl::StatusCode::kDataLoss);
}

TEST(JobFollowerTest, ARequeueRestartsTheFile) {
  const std::string out = TempPath("c.mp4");
  auto f = JobFollower::Create(out, 0, nullptr);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Consume(Chunk(0, "stale bytes")).ok());
  pb::GenerateVideoEvent requeued;
  requeued.mutable_requeued()->set_attempt(2);
  ASSERT_TRUE((*f)->Consume(requeued).ok());
  ASSERT_TRUE((*f)->Consume(Chunk(0, "new")).ok());
  ASSERT_TRUE((*f)->Consume(Completed(3)).ok());
  ASSERT_TRUE((*f)->Finish().ok());
  EXPECT_EQ(Read(out), "new");
  unlink(out.c_str());
}

TEST(JobFollowerTest, ResumesAPartialFileAndSkipsOverlap) {
  const std::string out = TempPath("d.mp4");
  {
    std::ofstream part(out + ".part", std::ios::binary);
    part << "0123456789";
  }
  auto f = JobFollower::Create(out, 4, nullptr);
  ASSERT_TRUE(f.ok()) << f.status();
  // A replay may start before the offset; only the new part is written.
  ASSERT_TRUE((*f)->Consume(Chunk(2, "23abc")).ok());
  ASSERT_TRUE((*f)->Consume(Chunk(7, "de")).ok());
  ASSERT_TRUE((*f)->Consume(Completed(9)).ok());
  ASSERT_TRUE((*f)->Finish().ok());
  EXPECT_EQ(Read(out), "0123abcde");
  unlink(out.c_str());
}

TEST(JobFollowerTest, ResumeNeedsTheEarlierBytes) {
  const std::string out = TempPath("e.mp4");
  EXPECT_EQ(JobFollower::Create(out, 10, nullptr).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(JobFollowerTest, FinishWithoutCompletionFails) {
  auto f = JobFollower::Create("", 0, nullptr);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->Finish().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(JobFollowerTest, FollowReadsTheWholeCall) {
  const std::string out = TempPath("f.mp4");
  auto f = JobFollower::Create(out, 0, nullptr);
  ASSERT_TRUE(f.ok()) << f.status();
  FakeReader reader({Chunk(0, "abc"), Chunk(3, "de"), Completed(5)},
                    grpc::Status::OK);
  grpc::ClientContext context;
  const FollowOutcome outcome = (*f)->Follow(reader, context);
  EXPECT_TRUE(outcome.ok());
  EXPECT_EQ(reader.read(), 3u);
  EXPECT_EQ(reader.finished(), 1);
  EXPECT_TRUE((*f)->completed());
  ASSERT_TRUE((*f)->Finish().ok());
  EXPECT_EQ(Read(out), "abcde");
  unlink(out.c_str());
}

TEST(JobFollowerTest, FollowStopsAtALocalError) {
  auto f = JobFollower::Create("", 0, nullptr);
  ASSERT_TRUE(f.ok());
  // The second chunk leaves a gap: nothing after it is read.
  FakeReader reader({Chunk(0, "abc"), Chunk(9, "xy"), Completed(11)},
                    grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  grpc::ClientContext context;
  const FollowOutcome outcome = (*f)->Follow(reader, context);
  EXPECT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.local.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(reader.read(), 2u);
  EXPECT_EQ(reader.finished(), 1);
  EXPECT_FALSE((*f)->completed());
}

TEST(JobFollowerTest, FollowReturnsTheCallStatus) {
  auto f = JobFollower::Create("", 0, nullptr);
  ASSERT_TRUE(f.ok());
  FakeReader reader({Chunk(0, "abc")},
                    grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone"));
  grpc::ClientContext context;
  const FollowOutcome outcome = (*f)->Follow(reader, context);
  EXPECT_TRUE(outcome.local.ok()) << outcome.local;
  EXPECT_EQ(outcome.rpc.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(outcome.rpc.error_message(), "gone");
  EXPECT_FALSE(outcome.ok());
  EXPECT_FALSE((*f)->completed());
}

}  // namespace
}  // namespace lvs::client
