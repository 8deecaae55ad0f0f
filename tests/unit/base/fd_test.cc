#include "base/fd.h"

#include <fcntl.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace runvm {
namespace {

using ::runvm::testing::StatusIs;
using ::testing::HasSubstr;

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(Fd, ClosesOnDestructionAndMoves) {
  int raw;
  {
    ASSERT_OK_AND_ASSIGN(Fd fd, OpenFile("/dev/null", O_RDONLY));
    raw = fd.get();
    EXPECT_TRUE(IsOpen(raw));
    EXPECT_TRUE(::fcntl(raw, F_GETFD) & FD_CLOEXEC);
    Fd moved = std::move(fd);
    EXPECT_FALSE(fd.valid());
    EXPECT_EQ(moved.get(), raw);
  }
  EXPECT_FALSE(IsOpen(raw));
}

TEST(Fd, ReleaseKeepsTheDescriptorOpen) {
  ASSERT_OK_AND_ASSIGN(Fd fd, OpenFile("/dev/null", O_RDONLY));
  int raw = fd.release();
  EXPECT_FALSE(fd.valid());
  EXPECT_TRUE(IsOpen(raw));
  ::close(raw);
}

TEST(Fd, OpenErrorNamesThePath) {
  EXPECT_THAT(OpenFile("/nonexistent/runvm", O_RDONLY),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("open /nonexistent/runvm")));
}

TEST(Pipe, BothEndsCloseOnExec) {
  ASSERT_OK_AND_ASSIGN(Pipe p, MakePipe());
  EXPECT_TRUE(::fcntl(p.read.get(), F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(::fcntl(p.write.get(), F_GETFD) & FD_CLOEXEC);
  ASSERT_EQ(::write(p.write.get(), "x", 1), 1);
  char c;
  ASSERT_EQ(::read(p.read.get(), &c, 1), 1);
  EXPECT_EQ(c, 'x');
}

}  // namespace
}  // namespace runvm
