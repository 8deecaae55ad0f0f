// What engines use of runc's command line beyond the lifecycle (tests/e2e/oci_fixture.h, real
// VMs): ids of every length the id rule allows, ps as runc prints it, exec's further flags and
// its own failures' status, events ending with the container and reporting an OOM kill, --debug,
// and a state root left empty.
#include "tests/e2e/oci_fixture.h"

namespace runvm::e2e {
namespace {

using ::testing::ContainsRegex;
using ::testing::StartsWith;

// An id of `length` characters drawn from everything the rule allows.
std::string IdOfLength(size_t length) {
  const std::string alphabet = "0123456789abcdef_+-.ABCXYZ";
  std::string id;
  for (size_t i = 0; i < length; ++i) id += alphabet[(i * 7 + length) % alphabet.size()];
  if (id.front() == '.') id.front() = 'x';
  return id;
}

TEST_F(OciTest, IdsOfEveryLengthUpToTheMaximumWalkTheLifecycle) {
  bundle_.spec.process.args = {"sleep", "1000"};
  bundle_.Save();
  // 1, podman's and CRI-O's 64 hex digits, containerd's 76, and the rule's maximum.
  for (size_t length : {size_t{1}, size_t{64}, size_t{76}, size_t{128}}) {
    const std::string id = IdOfLength(length);
    ids_.push_back(id);
    EngineIo io = Create({"run", "-d", "--bundle", bundle_.path, id});
    ASSERT_EQ(io.create.code, 0) << length << ": " << ReadFile(log_).value_or("");
    EXPECT_EQ(State(id)["status"], "running") << length;
    CommandResult r = Runvm({"exec", id, "sh", "-c", "echo in $0", id});
    EXPECT_EQ(r.code, 0) << length << ": " << r.err;
    EXPECT_EQ(r.out, "in " + id + "\n");
    ASSERT_EQ(Runvm({"kill", id, "KILL"}).code, 0);
    EXPECT_EQ(AwaitStatus(id, "stopped"), "stopped");
    EXPECT_EQ(Runvm({"delete", id}).code, 0) << length;
    ExpectNothingLeft(id);
  }
  // One longer is refused by the rule, saying so, and leaves nothing.
  const std::string too_long = IdOfLength(129);
  EngineIo io = Create({"create", "--bundle", bundle_.path, too_long});
  EXPECT_EQ(io.create.code, 1);
  EXPECT_THAT(LastLogLine().value("msg", ""), HasSubstr("129 characters, at most 128"));
  // As runc leaves its root: nothing in it once the last container is deleted.
  EXPECT_TRUE(std::filesystem::is_empty(root_)) << "the state root keeps entries";
}

TEST_F(OciTest, PsPrintsRuncsTableAndTakesTheOptionsItCan) {
  bundle_.spec.process.args = {"sh", "-c", "while :; do sleep 1; done"};
  bundle_.Save();
  const std::string id = NewId();
  ASSERT_EQ(Create({"run", "-d", "--bundle", bundle_.path, id}).create.code, 0)
      << ReadFile(log_).value_or("");
  CommandResult ps = Runvm({"ps", id});
  ASSERT_EQ(ps.code, 0) << ps.err;
  EXPECT_THAT(ps.out, StartsWith("UID          PID    PPID  C STIME TTY          TIME CMD\n"));
  EXPECT_THAT(ps.out, ContainsRegex("\nroot +[0-9]+ +[0-9]+ +[0-9]+ [0-9][0-9]:[0-9][0-9] \\? +"
                                    "00:00:0[0-9] sh -c while"));
  // runc passes what follows the id to ps(1).
  CommandResult ef = Runvm({"ps", id, "--", "-e", "-x"});
  EXPECT_EQ(ef.code, 0) << ef.err;
  EXPECT_THAT(ef.out, StartsWith("UID "));
  CommandResult fields = Runvm({"ps", id, "--", "-o", "pid,comm"});
  EXPECT_EQ(fields.code, 0) << fields.err;
  EXPECT_THAT(fields.out, StartsWith("    PID COMMAND\n"));
  EXPECT_THAT(fields.out, ContainsRegex("\n +[0-9]+ sh\n"));
  CommandResult refused = Runvm({"ps", id, "--", "--sort=pid"});
  EXPECT_EQ(refused.code, 1);
  EXPECT_THAT(refused.err, HasSubstr("ps option \"--sort=pid\" is not supported"));
}

TEST_F(OciTest, ExecTakesRuncsFurtherFlagsAndItsOwnFailuresExit255) {
  bundle_.spec.process.args = {"sleep", "1000"};
  bundle_.Save();
  const std::string id = NewId();
  ASSERT_EQ(Create({"run", "-d", "--bundle", bundle_.path, id}).create.code, 0)
      << ReadFile(log_).value_or("");
  CommandResult r =
      Runvm({"exec", "--additional-gids", "10", "-g", "20", "--preserve-fds", "0", id, "id", "-G"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "0 10 20\n");
  r = Runvm({"exec", "--preserve-fds", "2", id, "true"});
  EXPECT_EQ(r.code, 255);
  EXPECT_THAT(r.err, HasSubstr("--preserve-fds 2: the process runs in a VM"));
  for (const char* flag : {"--process-label", "--apparmor"}) {
    r = Runvm({"exec", flag, "some_label", id, "true"});
    EXPECT_EQ(r.code, 255) << flag;
    EXPECT_THAT(r.err, HasSubstr(absl::StrCat(flag, " some_label: the guest has no")));
  }
  r = Runvm({"exec", "--additional-gids", "wheel", id, "true"});
  EXPECT_EQ(r.code, 255);
  EXPECT_THAT(r.err, HasSubstr("--additional-gids \"wheel\": not a numeric gid"));
  r = Runvm({"exec", id, "/no/such/binary"});
  EXPECT_EQ(r.code, 255) << "runvm's own failure, not the process's status";
  EXPECT_THAT(r.err, HasSubstr("/no/such/binary"));
  r = Runvm({"exec", "no-such-container", "true"});
  EXPECT_EQ(r.code, 255);
  EXPECT_THAT(r.err, HasSubstr("container no-such-container does not exist"));
}

TEST_F(OciTest, EventsEndWithTheContainerAndReportAnOomKill) {
  // A 32 MiB limit, and a tail of /dev/zero (which never sees a newline) to exceed it.
  bundle_.spec.linux.resources.emplace().memory.emplace().limit = 32 << 20;
  bundle_.spec.process.args = {"sh", "-c", "sleep 1; tail /dev/zero; exit 0"};
  bundle_.Save();
  const std::string id = NewId();
  ASSERT_EQ(Create({"run", "-d", "--bundle", bundle_.path, id}).create.code, 0)
      << ReadFile(log_).value_or("");
  CommandResult events = Runvm({"events", "--interval", "200ms", id});
  EXPECT_EQ(events.code, 0) << events.err;
  EXPECT_THAT(events.out, HasSubstr("{\"type\":\"oom\",\"id\":\"" + id + "\"}\n"));
  EXPECT_THAT(events.out, HasSubstr("{\"type\":\"stats\""));
  EXPECT_EQ(State(id)["status"], "stopped") << "events ended with the container";
}

// linux.sysctl is written in the container's namespaces before it runs (its own network and ipc
// namespaces here); a key that is no sysctl name is refused, naming it.
TEST_F(OciTest, SysctlsAreSetInTheContainersNamespaces) {
  bundle_.spec.process.args = {
      "sh", "-c",
      "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced"};
  bundle_.spec.linux.sysctl = {{"net.ipv4.ip_unprivileged_port_start", "80"},
                               {"kernel.shm_rmid_forced", "1"}};
  bundle_.Save();
  CommandResult r = Runvm({"run", "--bundle", bundle_.path, NewId()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "80\n1\n");
  bundle_.spec.linux.sysctl = {{"../../../etc/passwd", "x"}};
  bundle_.Save();
  r = Runvm({"run", "--bundle", bundle_.path, NewId()});
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("linux.sysctl: \"../../../etc/passwd\" is no sysctl name"));
}

TEST_F(OciTest, DebugLogsEachCommandAtDebugLevel) {
  const std::string id = NewId();
  CommandResult r = Runvm({"--debug", "state", id}, nullptr, /*global_flags=*/true);
  EXPECT_EQ(r.code, 1);
  bool debug_line = false;
  for (absl::string_view line : absl::StrSplit(ReadFile(log_).value_or(""), '\n')) {
    Json j = Json::parse(line, nullptr, false);
    if (j.is_object() && j.value("level", "") == "debug" &&
        absl::StrContains(j.value("msg", ""), "state " + id)) {
      debug_line = true;
    }
  }
  EXPECT_TRUE(debug_line) << ReadFile(log_).value_or("");
}

}  // namespace
}  // namespace runvm::e2e
