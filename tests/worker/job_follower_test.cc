// Tests of the CLI's JobFollower: chunks land at their offsets, a gap is
// DATA_LOSS, a re-queue restarts the file, a resume continues a partial
// file, and the output appears only on completion.
#include "client/job_follower.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

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

}  // namespace
}  // namespace lvs::client
