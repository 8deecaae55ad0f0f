#include "base/process.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/time/clock.h"
#include "base/process_identity.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace runvm {
namespace {

using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::testing::HasSubstr;

std::string ReadAll(int fd) {
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, n);
  return out;
}

absl::Time Soon() { return absl::Now() + absl::Seconds(10); }

TEST(Spawn, ExitCodeAndMappedStdout) {
  ASSERT_OK_AND_ASSIGN(Pipe out, MakePipe());
  SpawnOptions o{.argv = {"/bin/sh", "-c", "echo hello; exit 3"}};
  o.fds[1] = out.write.get();
  ASSERT_OK_AND_ASSIGN(Child c, Spawn(o));
  out.write.reset();
  EXPECT_EQ(ReadAll(out.read.get()), "hello\n");
  ASSERT_OK_AND_ASSIGN(ExitStatus st, c.Wait(Soon()));
  EXPECT_TRUE(st.exited);
  EXPECT_EQ(st.code, 3);
}

TEST(Spawn, OnlyMappedDescriptorsReachTheChild) {
  // An fd without close-on-exec in the parent must still not leak into the child.
  int leaky = ::dup2(STDIN_FILENO, 50);
  ASSERT_EQ(leaky, 50);
  ASSERT_OK_AND_ASSIGN(Pipe out, MakePipe());
  ASSERT_OK_AND_ASSIGN(Pipe extra, MakePipe());
  SpawnOptions o{.argv = {"/bin/sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '"}};
  o.fds[1] = out.write.get();
  o.fds[5] = extra.read.get();
  ASSERT_OK_AND_ASSIGN(Child c, Spawn(o));
  out.write.reset();
  // ls itself holds one more descriptor (its directory handle, the lowest free: 3).
  EXPECT_EQ(ReadAll(out.read.get()), "0 1 2 3 5 ");
  ASSERT_THAT(c.Wait(Soon()), IsOk());
  ::close(leaky);
}

TEST(Spawn, SwappedMappingsDoNotClobberEachOther) {
  ASSERT_OK_AND_ASSIGN(Pipe a, MakePipe());
  ASSERT_OK_AND_ASSIGN(Pipe b, MakePipe());
  // Child fd 1 <- pipe b, child fd 2 <- pipe a: the sources may sit where the targets go.
  SpawnOptions o{.argv = {"/bin/sh", "-c", "echo out; echo err >&2"}};
  o.fds[1] = b.write.get();
  o.fds[2] = a.write.get();
  ASSERT_OK_AND_ASSIGN(Child c, Spawn(o));
  a.write.reset();
  b.write.reset();
  EXPECT_EQ(ReadAll(b.read.get()), "out\n");
  EXPECT_EQ(ReadAll(a.read.get()), "err\n");
  ASSERT_THAT(c.Wait(Soon()), IsOk());
}

TEST(Spawn, ExecFailureIsReportedWithThePath) {
  EXPECT_THAT(Spawn({.argv = {"/nonexistent/qemu"}}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("exec /nonexistent/qemu")));
}

TEST(Child, WaitDeadlineLeavesItRunningAndSignalEndsIt) {
  ASSERT_OK_AND_ASSIGN(Child c, Spawn({.argv = {"/bin/sleep", "30"}}));
  EXPECT_THAT(c.Wait(absl::Now() + absl::Milliseconds(50)),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("did not exit")));
  ASSERT_THAT(c.Signal(SIGTERM), IsOk());
  ASSERT_OK_AND_ASSIGN(ExitStatus st, c.Wait(Soon()));
  EXPECT_FALSE(st.exited);
  EXPECT_EQ(st.signal, SIGTERM);
  EXPECT_EQ(st.ShellCode(), 128 + SIGTERM);
}

TEST(Child, DestructorKillsAndReapsAnUnwaitedChild) {
  pid_t pid;
  {
    ASSERT_OK_AND_ASSIGN(Child c, Spawn({.argv = {"/bin/sleep", "30"}}));
    pid = c.pid();
  }
  EXPECT_EQ(::kill(pid, 0), -1) << "child " << pid << " survived its owner";
}

TEST(FindProcessesWithEnv, FindsOnlyTheMarkedProcess) {
  const std::string marker = "RUNVM_TEST_MARK=" + std::to_string(::getpid());
  ASSERT_OK_AND_ASSIGN(Child marked, Spawn({.argv = {"/bin/sleep", "30"}, .env = {{marker}}}));
  ASSERT_OK_AND_ASSIGN(Child other, Spawn({.argv = {"/bin/sleep", "30"}, .env = {{marker + "0"}}}));
  std::vector<ProcessIdentity> found = FindProcessesWithEnv(marker);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].pid, marked.pid());
  EXPECT_EQ(found[0].exe, "/usr/bin/sleep");
  ASSERT_THAT(marked.Signal(SIGKILL), IsOk());
  ASSERT_THAT(marked.Wait(Soon()), IsOk());
  EXPECT_TRUE(FindProcessesWithEnv(marker).empty()) << "an exited process is not found";
}

TEST(ProcessIdentity, SurvivesItsBinaryBeingReplaced) {
  // A package upgrade replaces runvm (the shims) or QEMU under running processes.
  const std::string copy = "/tmp/runvm-sleep-copy-" + std::to_string(::getpid());
  ASSERT_EQ(std::system(("cp /bin/sleep " + copy).c_str()), 0);
  ASSERT_OK_AND_ASSIGN(Child child, Spawn({.argv = {copy, "30"}}));
  ASSERT_OK_AND_ASSIGN(ProcessIdentity before, ReadProcessIdentity(child.pid()));
  EXPECT_EQ(before.exe, copy);
  ASSERT_EQ(::unlink(copy.c_str()), 0);
  ASSERT_OK_AND_ASSIGN(ProcessIdentity after, ReadProcessIdentity(child.pid()));
  EXPECT_EQ(after, before);
  EXPECT_TRUE(IsAlive(before));
}

}  // namespace
}  // namespace runvm
