// The agent's container launcher on this host's kernel (real namespaces, mounts, pivot_root,
// capabilities and seccomp; root needed), with a busybox rootfs made here: what the guest agent
// does for `create` and `start`, checked where it can be watched closely.
#include "agent/container.h"

#include <sys/socket.h>

#include <memory>
#include <optional>

#include "agent/agent.h"
#include "proto/io_frame.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/fd.h"
#include "base/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/bundle.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace runvm::agent {
namespace {

using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::runvm::testing::TempDir;
using ::testing::HasSubstr;

absl::Time Soon() { return absl::Now() + absl::Seconds(20); }

std::string ReadAll(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  return s;
}

class ContainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (namespaces, mounts)";
    testing::Bundle bundle = testing::MakeBusyboxBundle(dir_.path() + "/bundle");
    rootfs_ = bundle.rootfs;
    spec_ = bundle.spec;
    spec_.process.env = {"PATH=/bin", "X=from-spec"};
  }

  struct Run {
    int status = -1;
    std::string out, err;
  };
  // Creates, starts and waits for a container running `script` in sh.
  Run RunScript(const std::string& script) {
    spec_.process.args = {"sh", "-c", script};
    Run r;
    absl::StatusOr<Pipe> out = MakePipe(), err = MakePipe();
    EXPECT_THAT(out, IsOk());
    absl::StatusOr<Container> c =
        Container::Create({.id = "t",
                           .rootfs = rootfs_,
                           .spec = spec_,
                           .stdio = {-1, out->write.get(), err->write.get()}});
    EXPECT_THAT(c, IsOk());
    if (!c.ok()) return r;
    out->write.reset();
    err->write.reset();
    EXPECT_THAT(c->Start(), IsOk());
    r.out = ReadAll(out->read.get());
    r.err = ReadAll(err->read.get());
    absl::StatusOr<ExitStatus> st = c->Wait(Soon());
    EXPECT_THAT(st, IsOk());
    if (st.ok()) r.status = st->ShellCode();
    return r;
  }

  TempDir dir_;
  std::string rootfs_;
  oci::Spec spec_;
};

TEST_F(ContainerTest, StdoutStderrAndExitStatusAreTheProcesss) {
  Run r = RunScript("echo to-out; echo to-err >&2; exit 3");
  EXPECT_EQ(r.out, "to-out\n");
  EXPECT_EQ(r.err, "to-err\n");
  EXPECT_EQ(r.status, 3);
}

TEST_F(ContainerTest, ItIsPidOneWithItsHostnameInItsRootfs) {
  spec_.hostname = "box1";
  Run r = RunScript("echo $$; hostname; ls /");
  EXPECT_EQ(r.out, "1\nbox1\nbin\ndev\netc\nproc\nsys\ntmp\n") << "its own root";
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST_F(ContainerTest, UserCwdAndEnvAreHonoured) {
  spec_.process.user = {.uid = 1000, .gid = 1001, .additional_gids = {2000}};
  spec_.process.cwd = "/tmp";
  Run r = RunScript("id -u; id -g; id -G; pwd; echo $X");
  EXPECT_EQ(r.out, "1000\n1001\n1001 2000\n/tmp\nfrom-spec\n") << r.err;
}

TEST_F(ContainerTest, AReadOnlyRootIsEnforced) {
  spec_.root.readonly = true;
  Run r = RunScript("touch /x && echo wrote");
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("Read-only file system"));
}

TEST_F(ContainerTest, ADroppedCapabilityIsAbsentFromCapEff) {
  spec_.process.capabilities = oci::Capabilities{
      .bounding = {"CAP_KILL"}, .effective = {"CAP_KILL"}, .permitted = {"CAP_KILL"}};
  Run r = RunScript("grep CapEff /proc/self/status");
  EXPECT_EQ(r.out, "CapEff:\t0000000000000020\n") << "CAP_KILL (5) only; " << r.err;
}

TEST_F(ContainerTest, ASeccompRuleDenyingASyscallIsEnforced) {
  spec_.linux.seccomp = oci::Seccomp{
      .default_action = "SCMP_ACT_ALLOW",
      .architectures = {"SCMP_ARCH_X86_64"},
      .syscalls = {{.names = {"mkdir", "mkdirat"}, .action = "SCMP_ACT_ERRNO", .errno_ret = 1}}};
  spec_.root.readonly = false;
  Run r = RunScript("mkdir /tmp/d || echo denied");
  EXPECT_THAT(r.err, HasSubstr("Operation not permitted"));
  EXPECT_EQ(r.out, "denied\n");
}

TEST_F(ContainerTest, SeccompWithoutNoNewPrivilegesLeavesThemOff) {
  spec_.process.no_new_privileges = false;
  spec_.linux.seccomp = oci::Seccomp{
      .default_action = "SCMP_ACT_ALLOW",
      .syscalls = {{.names = {"mkdir", "mkdirat"}, .action = "SCMP_ACT_ERRNO", .errno_ret = 1}}};
  Run r = RunScript("grep NoNewPrivs /proc/self/status; mkdir /tmp/d || echo denied");
  EXPECT_EQ(r.out, "NoNewPrivs:\t0\ndenied\n") << r.err;
}

TEST_F(ContainerTest, RlimitsApply) {
  spec_.process.rlimits = {{.type = "RLIMIT_NOFILE", .hard = 200, .soft = 100}};
  Run r = RunScript("ulimit -n");
  EXPECT_EQ(r.out, "100\n");
}

TEST_F(ContainerTest, NothingRunsBeforeStart) {
  spec_.process.args = {"sh", "-c", "echo started"};
  absl::StatusOr<Pipe> out = MakePipe();
  ASSERT_THAT(out, IsOk());
  ASSERT_OK_AND_ASSIGN(
      Container c,
      Container::Create(
          {.id = "t", .rootfs = rootfs_, .spec = spec_, .stdio = {-1, out->write.get(), -1}}));
  out->write.reset();
  EXPECT_THAT(c.Wait(absl::Now() + absl::Milliseconds(200)),
              StatusIs(absl::StatusCode::kDeadlineExceeded))
      << "created, not started: still waiting";
  ASSERT_THAT(c.Start(), IsOk());
  EXPECT_THAT(c.Start(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(ReadAll(out->read.get()), "started\n");
  EXPECT_THAT(c.Wait(Soon()), IsOk());
}

TEST_F(ContainerTest, ASignalReachesTheProcess) {
  spec_.process.args = {"sh", "-c",
                        "trap 'echo got-usr1; exit 7' USR1; while :; do sleep 0.05; done"};
  absl::StatusOr<Pipe> out = MakePipe();
  ASSERT_THAT(out, IsOk());
  ASSERT_OK_AND_ASSIGN(
      Container c,
      Container::Create(
          {.id = "t", .rootfs = rootfs_, .spec = spec_, .stdio = {-1, out->write.get(), -1}}));
  out->write.reset();
  ASSERT_THAT(c.Start(), IsOk());
  absl::SleepFor(absl::Milliseconds(300));  // let sh install its trap
  ASSERT_THAT(c.Signal(SIGUSR1), IsOk());
  ASSERT_OK_AND_ASSIGN(ExitStatus st, c.Wait(Soon()));
  EXPECT_EQ(st.ShellCode(), 7);
  EXPECT_EQ(ReadAll(out->read.get()), "got-usr1\n");
}

TEST_F(ContainerTest, ABadSpecFailsCreateNamingTheStep) {
  spec_.mounts.push_back({.destination = "/weird", .type = "nosuchfs", .source = "x"});
  EXPECT_THAT(Container::Create({.id = "t", .rootfs = rootfs_, .spec = spec_}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("container t: mount /weird (nosuchfs) on ")));
  spec_ = oci::DefaultSpec();
  spec_.process.args = {"/bin/nonexistent"};
  spec_.process.cwd = "/nowhere";
  EXPECT_THAT(Container::Create({.id = "t", .rootfs = rootfs_, .spec = spec_}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("chdir /nowhere")));
}

// ---- the same through the agent's requests, with stdio on a port ----

class AgentContainerTest : public ContainerTest {
 protected:
  void SetUp() override {
    ContainerTest::SetUp();
    if (IsSkipped()) return;
    // Two ports: the container's (io-c1) and one exec's (io-c1-e1).
    auto guest_ends = std::make_shared<std::map<std::string, Fd>>();
    for (auto [name, shim] :
         {std::pair<const char*, Fd*>{"io-c1", &shim_}, {"io-c1-e1", &exec_shim_}}) {
      int sv[2];
      ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
      *shim = Fd(sv[0]);
      (*guest_ends)[name] = Fd(sv[1]);
    }
    open_port_ = [guest_ends](const std::string& name) -> absl::StatusOr<Fd> {
      auto it = guest_ends->find(name);
      if (it == guest_ends->end()) return absl::NotFoundError("no port " + name);
      return Fd(::dup(it->second.get()));
    };
    agent_.emplace(AgentOptions{.open_port = open_port_});
  }
  agent_proto::Message Ask(agent_proto::Message m) { return agent_->Handle(m); }
  agent_proto::Message Create(const std::string& script) {
    spec_.process.args = {"sh", "-c", script};
    return Ask({.type = agent_proto::kCreateContainer,
                .id = 1,
                .fields = agent_proto::ToFields(
                    agent_proto::CreateContainer{.id = "c1",
                                                 .rootfs = rootfs_,
                                                 .spec_json = oci::SpecToJson(spec_),
                                                 .stdio_port = "io-c1"})});
  }
  // An exec of `spec`'s process into c1, as "c1/e1" on the exec's port.
  agent_proto::Message Exec(const oci::Spec& spec) {
    return Ask({.type = agent_proto::kExecProcess,
                .id = 9,
                .fields = agent_proto::ToFields(agent_proto::CreateContainer{
                    .id = "c1/e1", .spec_json = oci::SpecToJson(spec), .stdio_port = "io-c1-e1"})});
  }
  agent_proto::Message Ref(const char* type) {
    return Ask(
        {.type = type, .id = 2, .fields = agent_proto::ToFields(agent_proto::ContainerRef{"c1"})});
  }
  // Reads frames from the port until the exit frame.
  struct Io {
    std::string out, err;
    int status = -1;
  };
  Io ReadUntilExit() { return ReadUntilExit(shim_.get()); }
  // Reads what the port has before `deadline`: 0 at its end, -1 when the deadline passed.
  static ssize_t ReadBefore(int port, char* buf, size_t size, absl::Time deadline) {
    pollfd p{port, POLLIN, 0};
    const int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0 || ::poll(&p, 1, ms) <= 0) return -1;
    return ::read(port, buf, size);
  }
  // `each_read`, if given, sees what came so far after every read (to answer it on the port).
  Io ReadUntilExit(int port, const std::function<void(const Io&)>& each_read = nullptr) {
    Io io;
    io_frame::Reader reader;
    const absl::Time deadline = Soon();
    for (;;) {
      char buf[4096];
      ssize_t n = ReadBefore(port, buf, sizeof buf, deadline);
      if (n <= 0) break;
      reader.Feed({buf, static_cast<size_t>(n)});
      for (;;) {
        absl::StatusOr<std::optional<io_frame::Frame>> f = reader.Next();
        if (!f.ok() || !f->has_value()) break;
        if ((*f)->kind == io_frame::kStdout) io.out += (*f)->data;
        if ((*f)->kind == io_frame::kStderr) io.err += (*f)->data;
        if ((*f)->kind == io_frame::kExit) {
          io.status = *io_frame::ExitStatusOf(**f);
          return io;
        }
      }
      if (each_read) each_read(io);
    }
    return io;
  }
  void Send(const std::string& bytes) {
    ASSERT_EQ(::write(shim_.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }

  Fd shim_, exec_shim_;
  std::function<absl::StatusOr<Fd>(const std::string&)> open_port_;
  std::optional<Agent> agent_;
};

TEST_F(AgentContainerTest, OutputErrorAndStatusTravelOnThePortAfterStart) {
  agent_proto::Message created = Create("echo out; echo err >&2; exit 3");
  ASSERT_EQ(created.type, agent_proto::kCreateContainer) << created.fields.dump();
  ASSERT_OK_AND_ASSIGN(agent_proto::Created c, agent_proto::CreatedFrom(created));
  EXPECT_GT(c.pid, 0);
  agent_proto::Message waited =
      Ask({.type = agent_proto::kWait,
           .id = 3,
           .fields = agent_proto::ToFields(agent_proto::WaitRequest{"c1", 0})});
  ASSERT_OK_AND_ASSIGN(agent_proto::WaitResult before, agent_proto::WaitResultFrom(waited));
  EXPECT_FALSE(before.exited) << "created, not started";
  EXPECT_EQ(Ref(agent_proto::kStartContainer).type, agent_proto::kStartContainer);
  Io io = ReadUntilExit();
  EXPECT_EQ(io.out, "out\n");
  EXPECT_EQ(io.err, "err\n");
  EXPECT_EQ(io.status, 3);
  waited = Ask({.type = agent_proto::kWait,
                .id = 4,
                .fields = agent_proto::ToFields(agent_proto::WaitRequest{"c1", 5000})});
  ASSERT_OK_AND_ASSIGN(agent_proto::WaitResult after, agent_proto::WaitResultFrom(waited));
  EXPECT_TRUE(after.exited);
  EXPECT_EQ(after.exit_status, 3);
  EXPECT_EQ(Ref(agent_proto::kDestroy).type, agent_proto::kDestroy);
  EXPECT_EQ(Ref(agent_proto::kStartContainer).type, agent_proto::kError) << "gone";
}

TEST_F(AgentContainerTest, StdinIsPipedToTheProcessUntilTheHostClosesIt) {
  ASSERT_EQ(Create("cat; echo done").type, agent_proto::kCreateContainer);
  Ref(agent_proto::kStartContainer);
  Send(io_frame::Encode(io_frame::kStdin, "piped "));
  Send(io_frame::Encode(io_frame::kStdin, "in\n"));
  Send(io_frame::Encode(io_frame::kStdinClosed));
  Io io = ReadUntilExit();
  EXPECT_EQ(io.out, "piped in\ndone\n");
  EXPECT_EQ(io.status, 0);
}

TEST_F(AgentContainerTest, ASignalFrameOnThePortReachesTheProcess) {
  ASSERT_EQ(Create("trap 'echo term; exit 7' TERM; echo ready; while :; do sleep 0.05; done").type,
            agent_proto::kCreateContainer);
  Ref(agent_proto::kStartContainer);
  // The shim forwards what it receives as a frame once the trap is set (sh said ready).
  bool sent = false;
  Io io = ReadUntilExit(shim_.get(), [&](const Io& so_far) {
    if (!sent && so_far.out == "ready\n") {
      Send(io_frame::EncodeSignal(SIGTERM));
      sent = true;
    }
  });
  EXPECT_EQ(io.out, "ready\nterm\n");
  EXPECT_EQ(io.status, 7);
}

TEST_F(AgentContainerTest, SignalsReachTheProcessAndAKilledOneReports128PlusSignal) {
  ASSERT_EQ(Create("trap 'echo usr1' USR1; while :; do sleep 0.05; done").type,
            agent_proto::kCreateContainer);
  Ref(agent_proto::kStartContainer);
  absl::SleepFor(absl::Milliseconds(300));  // let sh install its trap
  auto signal = [&](int sig) {
    return Ask({.type = agent_proto::kSignal,
                .id = 5,
                .fields = agent_proto::ToFields(agent_proto::SignalRequest{"c1", sig})});
  };
  EXPECT_EQ(signal(SIGUSR1).type, agent_proto::kSignal);
  absl::SleepFor(absl::Milliseconds(300));  // sh runs the trap once its sleep ends
  EXPECT_EQ(signal(SIGKILL).type, agent_proto::kSignal);
  Io io = ReadUntilExit();
  EXPECT_EQ(io.out, "usr1\n");
  EXPECT_EQ(io.status, 128 + SIGKILL);
  agent_proto::Message again = signal(SIGTERM);
  EXPECT_EQ(again.type, agent_proto::kError);
  EXPECT_THAT(again.fields.value("message", ""), HasSubstr("container c1 is not running"));
}

TEST_F(AgentContainerTest, ATerminalCarriesInputAndOutputAndTakesItsSize) {
  spec_.process.terminal = true;
  ASSERT_EQ(Create("[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && tty; read l; stty size; echo got:$l").type,
            agent_proto::kCreateContainer);
  Send(io_frame::EncodeResize(30, 90) + io_frame::Encode(io_frame::kStdin, "typed\r"));
  EXPECT_EQ(Ref(agent_proto::kStartContainer).type, agent_proto::kStartContainer);
  Io io = ReadUntilExit();
  // One stream, with the terminal's echo and line endings; nothing on stderr.
  // The pty is the container's own (its devpts instance): its first, named in its /dev/pts.
  EXPECT_THAT(io.out, HasSubstr("/dev/pts/0\r\n"));
  // The echo of the input comes whenever the relay delivers it; the size is set before the
  // input that `read` waits for, so stty sees it.
  EXPECT_THAT(io.out, HasSubstr("typed\r\n"));
  EXPECT_THAT(io.out, HasSubstr("30 90\r\ngot:typed\r\n"));
  EXPECT_EQ(io.err, "");
  EXPECT_EQ(io.status, 0);
}

TEST_F(AgentContainerTest, ProcessesListsEveryProcessOfTheContainer) {
  ASSERT_EQ(Create("sleep 100 & echo started; wait").type, agent_proto::kCreateContainer);
  EXPECT_EQ(Ref(agent_proto::kStartContainer).type, agent_proto::kStartContainer);
  std::vector<agent_proto::ProcessEntry> got;
  for (int i = 0; i < 100 && got.size() < 2; ++i) {  // until sh has started sleep
    agent_proto::Message m = Ref(agent_proto::kProcesses);
    ASSERT_EQ(m.type, agent_proto::kProcesses) << m.fields.dump();
    ASSERT_OK_AND_ASSIGN(agent_proto::ProcessList list, agent_proto::ProcessListFrom(m));
    got = list.processes;
    if (got.size() < 2) absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_THAT(got[0].command, HasSubstr("sleep 100 & echo started; wait"));
  EXPECT_EQ(got[1].command, "sleep 100");
  EXPECT_EQ(Ref(agent_proto::kDestroy).type, agent_proto::kDestroy);
  EXPECT_THAT(Ref(agent_proto::kProcesses).fields.value("message", ""),
              HasSubstr("container c1 does not exist"));
}

TEST_F(AgentContainerTest, AnExecRunsInTheContainersNamespacesWithItsOwnProcessSettings) {
  spec_.hostname = "in-the-container";
  spec_.root.readonly = false;
  ASSERT_EQ(Create("echo $$ > /tmp/init.pid; sleep 100").type, agent_proto::kCreateContainer);
  EXPECT_EQ(Ref(agent_proto::kStartContainer).type, agent_proto::kStartContainer);
  // The exec: another user, cwd and environment; the container's root, hostname and pid
  // namespace (its init is pid 1 there, and the exec sees the file the init wrote).
  oci::Spec exec_spec = spec_;
  exec_spec.process.args = {
      "sh", "-c",
      "while [ ! -s /tmp/init.pid ]; do sleep 0.1; done;"
      " echo $(hostname) $(id -u) $(pwd) $E init=$(cat /tmp/init.pid); exit 5"};
  exec_spec.process.user.uid = 1000;
  exec_spec.process.cwd = "/bin";
  exec_spec.process.env = {"PATH=/bin", "E=from-exec"};
  // The exec's spec is the container's, whose namespaces an engine may name by host paths
  // (containerd's pod members: /proc/<pid>/ns/ipc): the exec joins the init's and opens none.
  ASSERT_FALSE(exec_spec.linux.namespaces.empty());
  for (oci::Namespace& ns : exec_spec.linux.namespaces) {
    if (ns.type != "pid" && ns.type != "mount") ns.path = "/proc/999999999/ns/" + ns.type;
  }
  agent_proto::Message m = Exec(exec_spec);
  ASSERT_EQ(m.type, agent_proto::kExecProcess) << m.fields.dump();
  Io io = ReadUntilExit(exec_shim_.get());
  EXPECT_EQ(io.out, "in-the-container 1000 /bin from-exec init=1\n") << io.err;
  EXPECT_EQ(io.status, 5);
  // Destroying the container takes its execs with it.
  EXPECT_EQ(Ref(agent_proto::kDestroy).type, agent_proto::kDestroy);
  agent_proto::Message gone =
      Ask({.type = agent_proto::kWait,
           .id = 10,
           .fields = agent_proto::ToFields(agent_proto::WaitRequest{"c1/e1", 0})});
  EXPECT_EQ(gone.type, agent_proto::kError);
  // An exec into a container that does not exist.
  m = Ask({.type = agent_proto::kExecProcess,
           .id = 11,
           .fields = agent_proto::ToFields(agent_proto::CreateContainer{
               .id = "c1/e2", .spec_json = oci::SpecToJson(exec_spec), .stdio_port = "io-c1-e1"})});
  EXPECT_THAT(m.fields.value("message", ""), HasSubstr("container c1 does not exist"));
}

// The agent clones a process while its other threads come and go. glibc's set*id wrappers in the
// clone wait for the threads glibc knew of at that instant; one still being created never
// answers, and the exec hung until its container ended.
TEST_F(AgentContainerTest, ExecsAsAnotherUserWhileTheAgentStartsThreads) {
  ASSERT_EQ(Create("cat").type, agent_proto::kCreateContainer);  // runs until its stdin closes
  EXPECT_EQ(Ref(agent_proto::kStartContainer).type, agent_proto::kStartContainer);
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    while (!stop) std::thread([] {}).join();
  });
  oci::Spec exec_spec = spec_;
  exec_spec.process.args = {"id", "-u"};
  exec_spec.process.user.uid = 1000;
  for (int i = 0; i < 20; ++i) {
    agent_proto::Message m = Ask({.type = agent_proto::kExecProcess,
                                  .id = static_cast<uint64_t>(20 + i),
                                  .fields = agent_proto::ToFields(agent_proto::CreateContainer{
                                      .id = absl::StrCat("c1/e", i),
                                      .spec_json = oci::SpecToJson(exec_spec),
                                      .stdio_port = "io-c1-e1"})});
    ASSERT_EQ(m.type, agent_proto::kExecProcess) << m.fields.dump();
    Io io = ReadUntilExit(exec_shim_.get());
    EXPECT_EQ(io.out, "1000\n") << io.err;
    EXPECT_EQ(io.status, 0);
  }
  stop = true;
  churn.join();
}

TEST_F(AgentContainerTest, BadRequestsAreErrorsNamingTheCause) {
  agent_proto::Message m =
      Ask({.type = agent_proto::kCreateContainer,
           .id = 1,
           .fields = agent_proto::ToFields(agent_proto::CreateContainer{
               .id = "c3", .rootfs = rootfs_, .spec_json = "{", .stdio_port = "io-c1"})});
  EXPECT_EQ(m.type, agent_proto::kError);
  EXPECT_THAT(m.fields.value("message", ""), HasSubstr("JSON"));
  m = Ask({.type = agent_proto::kCreateContainer,
           .id = 1,
           .fields = agent_proto::ToFields(
               agent_proto::CreateContainer{.id = "c2",
                                            .rootfs = rootfs_,
                                            .spec_json = oci::SpecToJson(spec_),
                                            .stdio_port = "io-nope"})});
  EXPECT_THAT(m.fields.value("message", ""), HasSubstr("no port io-nope"));
  EXPECT_THAT(Ref(agent_proto::kDestroy).fields.value("message", ""),
              HasSubstr("container c1 does not exist"));
}

// ---- the container's cgroup (agent/cgroup.h), on this host's cgroup2 ----

// A cgroup2 hierarchy of this host: /sys/fs/cgroup (unified) or /sys/fs/cgroup/unified (hybrid).
std::string HostCgroup2() {
  for (const char* dir : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    if (::access((std::string(dir) + "/cgroup.procs").c_str(), F_OK) == 0 &&
        ::access((std::string(dir) + "/cgroup.controllers").c_str(), F_OK) == 0) {
      return dir;
    }
  }
  return "";
}

class CgroupContainerTest : public AgentContainerTest {
 protected:
  void SetUp() override {
    AgentContainerTest::SetUp();
    if (IsSkipped()) return;
    const std::string host = HostCgroup2();
    if (host.empty()) GTEST_SKIP() << "no cgroup2 hierarchy on this host";
    root_ = absl::StrCat(host, "/runvm-test-", ::getpid());
    ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0) << root_;
    agent_.emplace(AgentOptions{.open_port = open_port_, .cgroup_root = root_});
    spec_.root.readonly = false;
  }
  void TearDown() override {
    agent_.reset();  // destroys what runs
    if (!root_.empty()) {
      EXPECT_EQ(::rmdir(root_.c_str()), 0) << root_ << " is not empty";
    }
  }
  int64_t Counter() {
    absl::StatusOr<std::string> n = ReadFile(rootfs_ + "/tmp/n");
    int64_t v = -1;
    if (n.ok()) (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(*n), &v);
    return v;
  }
  // Waits until the counter is above `than`.
  int64_t CounterAbove(int64_t than) {
    for (int i = 0; i < 500; ++i) {
      int64_t v = Counter();
      if (v > than) return v;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return Counter();
  }
  absl::StatusOr<agent_proto::CgroupStats> Stats() {
    return agent_proto::CgroupStatsFrom(Ref(agent_proto::kStats));
  }
  std::string root_;
};

TEST_F(CgroupContainerTest, TheContainerIsBornInItsCgroupWhichIsItsCgroupNamespacesRoot) {
  ASSERT_EQ(Create("grep ^0:: /proc/self/cgroup").type, agent_proto::kCreateContainer);
  EXPECT_EQ(::access((root_ + "/c-c1/cgroup.procs").c_str(), F_OK), 0);
  ASSERT_OK_AND_ASSIGN(std::string procs, ReadFile(root_ + "/c-c1/cgroup.procs"));
  EXPECT_NE(procs, "") << "its init waits in it for start";
  EXPECT_EQ(Ref(agent_proto::kStartContainer).type, agent_proto::kStartContainer);
  EXPECT_EQ(ReadUntilExit().out, "0::/\n");
  EXPECT_EQ(Ref(agent_proto::kDestroy).type, agent_proto::kDestroy);
  EXPECT_NE(::access((root_ + "/c-c1").c_str(), F_OK), 0) << "removed with the container";
}

// The device rules engines write (deny everything first, then some allowed): the program the
// agent builds from them passes the kernel's verifier (a rule matching everything ends it: code
// after it would be unreachable, which the verifier refuses) and the container is created.
TEST_F(CgroupContainerTest, TheDeviceRulesEnginesWriteLoad) {
  oci::Resources r;
  r.devices = {{.allow = false, .access = "rwm"},
               {.allow = true, .type = "c", .major = 1, .minor = 3, .access = "rwm"},
               {.allow = false, .access = "rwm"}};
  spec_.linux.resources = r;
  agent_proto::Message m = Create("echo x > /dev/null && echo ok");
  ASSERT_EQ(m.type, agent_proto::kCreateContainer) << m.fields.dump();
  EXPECT_EQ(Ref(agent_proto::kStartContainer).type, agent_proto::kStartContainer);
  EXPECT_EQ(ReadUntilExit().out, "ok\n");
  EXPECT_EQ(Ref(agent_proto::kDestroy).type, agent_proto::kDestroy);
}

// containerd on a cgroup v1 host writes no cgroup namespace into the spec; in the guest (v2)
// the container still gets one rooted at its cgroup, and an exec joins it.
TEST_F(CgroupContainerTest, WithoutACgroupNamespaceInTheSpecTheContainerStillGetsItsOwn) {
  std::erase_if(spec_.linux.namespaces,
                [](const oci::Namespace& ns) { return ns.type == "cgroup"; });
  ASSERT_EQ(Create("grep ^0:: /proc/self/cgroup; sleep 100").type, agent_proto::kCreateContainer);
  EXPECT_EQ(Ref(agent_proto::kStartContainer).type, agent_proto::kStartContainer);
  oci::Spec exec_spec = spec_;
  exec_spec.process.args = {"grep", "^0::", "/proc/self/cgroup"};
  agent_proto::Message m = Exec(exec_spec);
  ASSERT_EQ(m.type, agent_proto::kExecProcess) << m.fields.dump();
  EXPECT_EQ(ReadUntilExit(exec_shim_.get()).out, "0::/\n");
  EXPECT_EQ(Ref(agent_proto::kDestroy).type, agent_proto::kDestroy);
}

TEST_F(CgroupContainerTest, PauseStopsACounterAndResumeContinuesIt) {
  ASSERT_EQ(Create("i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.02; done").type,
            agent_proto::kCreateContainer);
  EXPECT_EQ(Ref(agent_proto::kStartContainer).type, agent_proto::kStartContainer);
  ASSERT_GT(CounterAbove(2), 2);
  ASSERT_EQ(Ref(agent_proto::kPause).type, agent_proto::kPause);
  ASSERT_OK_AND_ASSIGN(agent_proto::CgroupStats paused, Stats());
  EXPECT_TRUE(paused.frozen);
  const int64_t at = Counter();
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(Counter(), at) << "frozen";
  ASSERT_EQ(Ref(agent_proto::kResume).type, agent_proto::kResume);
  EXPECT_GT(CounterAbove(at), at) << "thawed";
  ASSERT_OK_AND_ASSIGN(agent_proto::CgroupStats running, Stats());
  EXPECT_FALSE(running.frozen);
  EXPECT_GT(running.cpu_usage_usec, 0);
  // Destroying a paused container works too (the cgroup is thawed to let its processes die).
  ASSERT_EQ(Ref(agent_proto::kPause).type, agent_proto::kPause);
  EXPECT_EQ(Ref(agent_proto::kDestroy).type, agent_proto::kDestroy);
  EXPECT_NE(::access((root_ + "/c-c1").c_str(), F_OK), 0);
}

TEST_F(CgroupContainerTest, ALimitOnAControllerTheKernelLacksIsRefusedByName) {
  ASSERT_OK_AND_ASSIGN(std::string offered, ReadFile(HostCgroup2() + "/cgroup.controllers"));
  if (absl::StrContains(offered, "pids")) GTEST_SKIP() << "this host offers pids in cgroup2";
  ASSERT_EQ(Create("sleep 100").type, agent_proto::kCreateContainer);
  agent_proto::Message m = Ask({.type = agent_proto::kUpdate,
                                .id = 5,
                                .fields = agent_proto::ToFields(
                                    agent_proto::UpdateRequest{"c1", R"({"pids":{"limit":5}})"})});
  EXPECT_EQ(m.type, agent_proto::kError);
  EXPECT_THAT(m.fields.value("message", ""),
              HasSubstr("container c1: pids.max: the guest kernel has no pids controller"));
  m = Ask({.type = agent_proto::kUpdate,
           .id = 6,
           .fields =
               agent_proto::ToFields(agent_proto::UpdateRequest{"c1", R"({"cpu":{"quota":-7}})"})});
  EXPECT_THAT(m.fields.value("message", ""), HasSubstr("cpu.quota: -7"));
  EXPECT_EQ(Ref(agent_proto::kDestroy).type, agent_proto::kDestroy);
}

TEST_F(AgentContainerTest, WithoutCgroupsPauseIsRefusedSayingSo) {
  ASSERT_EQ(Create("sleep 100").type, agent_proto::kCreateContainer);
  EXPECT_THAT(Ref(agent_proto::kPause).fields.value("message", ""),
              HasSubstr("the agent runs without cgroups"));
  EXPECT_EQ(Ref(agent_proto::kDestroy).type, agent_proto::kDestroy);
}

}  // namespace
}  // namespace runvm::agent
