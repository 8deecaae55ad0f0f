// The agent and the host's agent client over a socketpair: hello, health, guest details from a
// fake sysfs, run with output, status, timeout and errors; and a client killed mid-frame.
#include "agent/agent.h"

#include <sys/socket.h>

#include <thread>

#include "absl/time/clock.h"
#include "base/fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/sandbox/agent_client.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace runvm::agent {
namespace {

using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::runvm::testing::TempDir;
using ::testing::HasSubstr;

absl::Time Soon() { return absl::Now() + absl::Seconds(10); }

class AgentTest : public ::testing::Test {
 protected:
  AgentTest() {
    dir_.Write("sys/devices/system/memory/block_size_bytes", "8000000\n");
    dir_.Write("sys/devices/system/cpu/online", "0-1,3\n");
    dir_.Write("proc/meminfo", "MemTotal:         480000 kB\nMemFree: 1 kB\n");
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    host_ = Fd(sv[0]);
    guest_ = Fd(sv[1]);
    agent_.emplace(AgentOptions{.version = "t1",
                                .sysfs = dir_.path() + "/sys",
                                .procfs = dir_.path() + "/proc",
                                .max_output_bytes = 1000});
    server_ = std::thread([this] { served_ = agent_->ServeStream(guest_.get()); });
  }
  ~AgentTest() override {
    host_.reset();  // end of stream: the agent returns
    server_.join();
    EXPECT_THAT(served_, IsOk());
  }
  // A client on a duplicate of the host end (a "new invocation" on the same port).
  AgentClient Client() {
    absl::StatusOr<AgentClient> c = AgentClient::Adopt(Fd(::dup(host_.get())), Soon());
    EXPECT_THAT(c, IsOk());
    return *std::move(c);
  }

  TempDir dir_;
  Fd host_, guest_;
  std::optional<Agent> agent_;
  std::thread server_;
  absl::Status served_;
};

TEST_F(AgentTest, HelloHealthAndGuestDetails) {
  AgentClient c = Client();
  EXPECT_EQ(c.hello().agent_version, "t1");
  EXPECT_FALSE(c.hello().kernel.empty());
  EXPECT_THAT(c.Health(Soon()), IsOk());
  ASSERT_OK_AND_ASSIGN(agent_proto::GuestDetails d, c.GuestDetails(Soon()));
  EXPECT_EQ(d.memory_block_size_bytes, 128 << 20);
  EXPECT_EQ(d.online_cpus, 3);
  EXPECT_EQ(d.mem_total_kib, 480000);
}

TEST_F(AgentTest, RunCollectsOutputStatusAndHonoursCwdAndEnv) {
  AgentClient c = Client();
  ASSERT_OK_AND_ASSIGN(agent_proto::RunResult r,
                       c.Run({.argv = {"/bin/sh", "-c", "echo $X; pwd; echo oops >&2; exit 3"},
                              .env = {"X=hello", "PATH=/bin"},
                              .cwd = "/tmp"},
                             Soon()));
  EXPECT_EQ(r.out, "hello\n/tmp\n");
  EXPECT_EQ(r.err, "oops\n");
  EXPECT_EQ(r.exit_status, 3);
  EXPECT_FALSE(r.timed_out);
}

TEST_F(AgentTest, RunIsBoundedInTimeAndOutput) {
  AgentClient c = Client();
  ASSERT_OK_AND_ASSIGN(agent_proto::RunResult slow,
                       c.Run({.argv = {"/bin/sleep", "30"}, .timeout_ms = 100}, Soon()));
  EXPECT_TRUE(slow.timed_out);
  EXPECT_EQ(slow.exit_status, 128 + 9);
  ASSERT_OK_AND_ASSIGN(agent_proto::RunResult loud,
                       c.Run({.argv = {"/bin/sh", "-c", "head -c 5000 /dev/zero"}}, Soon()));
  EXPECT_EQ(loud.out.size(), 1000u);
  EXPECT_EQ(loud.exit_status, 0);
}

TEST_F(AgentTest, FailuresAreErrorsNamingTheRequest) {
  AgentClient c = Client();
  EXPECT_THAT(c.Run({.argv = {"/nonexistent/tool"}}, Soon()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("agent: run: exec /nonexistent/tool")));
  EXPECT_THAT(c.Run({.argv = {"/bin/true"}, .cwd = "/nonexistent"}, Soon()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("cwd /nonexistent")));
  EXPECT_THAT(
      c.Call({.type = "teleport"}, Soon()),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("teleport: unknown request type")));
}

TEST_F(AgentTest, AClientKilledMidFrameIsDiscardedAndTheNextIsServed) {
  // An invocation that died half way through a request: its bytes stay in the stream.
  std::string frame = agent_proto::EncodeFrame(
      {.type = agent_proto::kRun,
       .id = 1,
       .fields = agent_proto::ToFields(agent_proto::RunRequest{.argv = {"/bin/true"}})});
  ASSERT_EQ(::write(host_.get(), frame.data(), 20), 20);
  AgentClient next = Client();  // hello gets through
  ASSERT_OK_AND_ASSIGN(agent_proto::RunResult r,
                       next.Run({.argv = {"/bin/echo", "served"}}, Soon()));
  EXPECT_EQ(r.out, "served\n");
}

TEST_F(AgentTest, RepliesMeantForAnEarlierClientAreSkipped) {
  {
    AgentClient first = Client();
    agent_proto::Message health{.type = agent_proto::kHealth, .id = 99};
    std::string f = agent_proto::EncodeFrame(health);
    ASSERT_EQ(::write(host_.get(), f.data(), f.size()), static_cast<ssize_t>(f.size()));
    // `first` goes away without reading the answer.
  }
  AgentClient second = Client();
  EXPECT_THAT(second.Health(Soon()), IsOk());
}

}  // namespace
}  // namespace runvm::agent
