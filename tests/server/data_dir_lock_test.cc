// Two servers on one data dir used to run the same jobs twice; the second
// now fails to lock the directory and says which pid holds it.
#include "server/data_dir_lock.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <optional>

#include "absl/strings/str_cat.h"
#include "tests/server/test_util.h"

namespace lvs::server {
namespace {

TEST(DataDirLockTest, SecondHolderIsRefusedWithThePid) {
  testing::TempDir dir;
  const std::string data = dir.path() + "/data";
  std::optional<DataDirLock> first;
  {
    absl::StatusOr<DataDirLock> lock = DataDirLock::Acquire(data);
    ASSERT_TRUE(lock.ok()) << lock.status();
    first.emplace(*std::move(lock));
  }
  absl::StatusOr<DataDirLock> second = DataDirLock::Acquire(data);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(
      second.status().message().find(absl::StrCat("in use by pid ", getpid())),
      std::string::npos)
      << second.status();
  first.reset();  // Released: the next server may start.
  EXPECT_TRUE(DataDirLock::Acquire(data).ok());
}

}  // namespace
}  // namespace lvs::server
