#include "base/file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace runvm {
namespace {

using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::runvm::testing::TempDir;
using ::testing::HasSubstr;

TEST(ReadFile, ReadsWholeFileAndEnforcesTheLimit) {
  TempDir dir;
  std::string path = dir.Write("f", std::string(100, 'a'));
  ASSERT_OK_AND_ASSIGN(std::string text, ReadFile(path));
  EXPECT_EQ(text, std::string(100, 'a'));
  EXPECT_THAT(ReadFile(path, 10), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(path)));
  EXPECT_THAT(ReadFile(dir.path() + "/missing"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing")));
}

TEST(WriteFileAtomic, ReplacesContentAndLeavesNoTemporary) {
  TempDir dir;
  std::string path = dir.path() + "/record.json";
  ASSERT_THAT(WriteFileAtomic(path, "one"), IsOk());
  ASSERT_THAT(WriteFileAtomic(path, "two", 0600), IsOk());
  ASSERT_OK_AND_ASSIGN(std::string text, ReadFile(path));
  EXPECT_EQ(text, "two");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(WriteFileAtomic(dir.path() + "/no/such/dir/f", "x"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no/such/dir")));
}

// The temporary name is predictable (<path>.tmp.<pid>): a symlink planted there, as a hostile user
// of a writable pid-file directory would, is replaced, never followed.
TEST(WriteFileAtomic, APlantedSymlinkAtTheTemporaryNameIsNotFollowed) {
  TempDir dir;
  const std::string target = dir.Write("precious", "keep me");
  const std::string path = dir.path() + "/container.pid";
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  ASSERT_EQ(::symlink(target.c_str(), tmp.c_str()), 0);
  ASSERT_THAT(WriteFileAtomic(path, "1234"), IsOk());
  EXPECT_EQ(ReadFile(target).value_or(""), "keep me");
  EXPECT_EQ(ReadFile(path).value_or(""), "1234");
  struct stat st;
  EXPECT_NE(::lstat(tmp.c_str(), &st), 0) << "the temporary name is gone";
}

}  // namespace
}  // namespace runvm
