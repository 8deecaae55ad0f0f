// The OCI lifecycle end to end (tests/e2e/oci_fixture.h): run, create/start/kill/delete with
// engines' flags and call sequences, terminals, exec, bad input.
#include "tests/e2e/oci_fixture.h"

namespace runvm::e2e {
namespace {

TEST_F(OciTest, RunRelaysStdioAndExitsWithTheWorkloadsStatus) {
  bundle_.spec.process.args = {
      "sh", "-c",
      "uname -r; echo to-stderr >&2; read line; echo got:$line; id -u; id -g; pwd; echo $GREETING;"
      " exit 3"};
  bundle_.spec.process.user.uid = 1000;
  bundle_.spec.process.user.gid = 1000;
  bundle_.spec.process.cwd = "/tmp";
  bundle_.spec.process.env.push_back("GREETING=hello from the spec");
  bundle_.Save();
  const std::string id = NewId();
  const std::string input = "piped\n";
  CommandResult r = Runvm({"run", "--bundle", bundle_.path, id}, &input);
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(r.out, absl::StrCat(GuestKernelRelease(), "\ngot:piped\n1000\n1000\n/tmp\n",
                                "hello from the spec\n"))
      << "uname -r shows the guest's kernel (" << GuestKernelRelease() << "), not the host's";
  EXPECT_EQ(r.err, "to-stderr\n");
  // run removes the container once it exited.
  EXPECT_THAT(Runvm({"state", id}).err, HasSubstr("does not exist"));
}

TEST_F(OciTest, LifecycleStatesSignalsAndTheShimsExitStatus) {
  bundle_.spec.process.args = {
      "sh", "-c",
      "trap 'echo got-usr1' USR1; trap 'echo got-term; exit 7' TERM; echo ready;"
      " while :; do sleep 0.1; done"};
  bundle_.Save();
  const std::string id = NewId();
  const std::string pid_file = dir_.path() + "/init.pid";
  EngineIo io = Create({"create", "--bundle", bundle_.path, "--pid-file", pid_file, id});
  ASSERT_EQ(io.create.code, 0) << ReadFile(log_).value_or("");
  Json state = State(id);
  EXPECT_EQ(state["status"], "created");
  EXPECT_EQ(state["id"], id);
  EXPECT_EQ(state["bundle"], bundle_.path);
  EXPECT_EQ(state["rootfs"], bundle_.rootfs);
  EXPECT_EQ(state["ociVersion"], "1.0.2");
  // The pid file holds digits only: the shim's pid, which state reports too.
  ASSERT_OK_AND_ASSIGN(std::string pid_text, ReadFile(pid_file));
  int pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(pid_text, &pid) &&
              pid_text.find_first_not_of("0123456789") == std::string::npos)
      << "\"" << pid_text << "\"";
  EXPECT_EQ(state["pid"], pid);
  EXPECT_EQ(Runvm({"list", "-q"}).out, id + "\n");
  Json listed = Json::parse(Runvm({"list", "--format", "json"}).out, nullptr, false);
  ASSERT_TRUE(listed.is_array() && listed.size() == 1u) << listed;
  EXPECT_EQ(listed[0], state);
  EXPECT_THAT(Runvm({"list"}).out, HasSubstr(id));
  // A second create of the same id is refused and changes nothing.
  EngineIo again = Create({"create", "--bundle", bundle_.path, id});
  EXPECT_EQ(again.create.code, 1);
  EXPECT_THAT(LastLogLine().value("msg", ""), HasSubstr("container with id exists: " + id));
  EXPECT_EQ(LastLogLine().value("level", ""), "error");
  EXPECT_EQ(State(id)["status"], "created");

  ASSERT_EQ(Runvm({"start", id}).code, 0);
  EXPECT_THAT(ReadUntil(io.stdout_r.get(), "ready\n"), HasSubstr("ready"));
  EXPECT_EQ(State(id)["status"], "running");
  EXPECT_THAT(Runvm({"start", id}).err, HasSubstr("cannot start an already running container"));
  // ps: the guest's pids of the container's processes (its init first), and their commands.
  Json pids = Json::parse(Runvm({"ps", "--format", "json", id}).out, nullptr, false);
  ASSERT_TRUE(pids.is_array() && !pids.empty()) << pids;
  EXPECT_TRUE(pids[0].is_number_integer());
  EXPECT_THAT(Runvm({"ps", id}).out, HasSubstr("sh -c trap"));
  ASSERT_EQ(Runvm({"kill", id, "USR1"}).code, 0);
  EXPECT_THAT(ReadUntil(io.stdout_r.get(), "got-usr1\n"), HasSubstr("got-usr1"))
      << "the trap in the container saw USR1";
  ASSERT_EQ(Runvm({"kill", id}).code, 0);  // TERM by default
  ASSERT_OK_AND_ASSIGN(int status, WaitForExit(pid, absl::Seconds(60)));
  EXPECT_EQ(status, 7) << "the shim exits with the workload's status";
  EXPECT_THAT(ReadAll(io.stdout_r.get()), HasSubstr("got-term"));
  EXPECT_EQ(State(id)["status"], "stopped");
  EXPECT_EQ(State(id)["pid"], 0);
  CommandResult late = Runvm({"kill", id, "KILL"});
  EXPECT_EQ(late.code, 1);
  EXPECT_THAT(late.err, HasSubstr("container not running"));
  EXPECT_THAT(Runvm({"ps", id}).err, HasSubstr("container not running"));
  EXPECT_EQ(Runvm({"delete", id}).code, 0);
  ExpectNothingLeft(id);
}

TEST_F(OciTest, ContainerdShimCallSequenceReplays) {
  // As containerd's runc shim calls it (flags and order as observed), with a workload that only
  // SIGKILL ends: it is pid 1 of its namespace without a TERM handler.
  bundle_.spec.process.args = {"sleep", "1000"};
  bundle_.Save();
  const std::string id = NewId();
  const std::string pid_file = bundle_.path + "/init.pid";
  EngineIo io = Create({"create", "--bundle", bundle_.path, "--pid-file", pid_file, id});
  ASSERT_EQ(io.create.code, 0) << ReadFile(log_).value_or("");
  ASSERT_OK_AND_ASSIGN(std::string pid_text, ReadFile(pid_file));
  int pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(pid_text, &pid)) << pid_text;
  for (const std::vector<std::string>& call :
       {std::vector<std::string>{"start", id}, {"kill", id, "15"}, {"kill", id, "9"}}) {
    CommandResult r = Runvm(call);
    EXPECT_EQ(r.code, 0) << absl::StrJoin(call, " ") << ": " << r.err;
  }
  ASSERT_OK_AND_ASSIGN(int status, WaitForExit(pid, absl::Seconds(60)));
  EXPECT_EQ(status, 128 + 9);
  for (const std::vector<std::string>& call : {std::vector<std::string>{"kill", "--all", id, "9"},
                                               {"delete", id},
                                               {"delete", "--force", id}}) {
    CommandResult r = Runvm(call);
    EXPECT_EQ(r.code, 0) << absl::StrJoin(call, " ") << ": " << r.err;
  }
  ExpectNothingLeft(id);
}

TEST_F(OciTest, PodmanAndConformanceCallSequencesReplay) {
  bundle_.spec.process.args = {"sh", "-c",
                               "trap 'echo usr1' USR1; echo ready; while :; do sleep 0.1; done"};
  bundle_.Save();
  // conmon: no global flags (the root is the default one, so the ids are unique).
  const std::string podman_id = NewId() + "-podman";
  ids_.back() = podman_id;
  const std::string pid_file = dir_.path() + "/conmon.pid";
  EngineIo podman = Create({"create", "--bundle", bundle_.path, "--pid-file", pid_file, podman_id},
                           /*global_flags=*/false);
  ASSERT_EQ(podman.create.code, 0) << ReadAll(podman.stderr_r.get());
  for (const std::vector<std::string>& call : {std::vector<std::string>{"start", podman_id},
                                               {"kill", podman_id, "15"},
                                               {"kill", podman_id, "9"},
                                               {"delete", "--force", podman_id}}) {
    CommandResult r = Runvm(call, nullptr, /*global_flags=*/false);
    EXPECT_EQ(r.code, 0) << absl::StrJoin(call, " ") << ": " << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists("/run/runvm/" + podman_id));
  ids_.pop_back();

  // A conformance suite: create without a pid file, state, signals by name, delete.
  const std::string id = NewId();
  EngineIo io = Create({"create", "--bundle", bundle_.path, id});
  ASSERT_EQ(io.create.code, 0) << ReadFile(log_).value_or("");
  EXPECT_EQ(State(id)["status"], "created");
  ASSERT_EQ(Runvm({"start", id}).code, 0);
  EXPECT_THAT(ReadUntil(io.stdout_r.get(), "ready\n"), HasSubstr("ready"));
  EXPECT_EQ(Runvm({"kill", id, "USR1"}).code, 0);
  EXPECT_THAT(ReadUntil(io.stdout_r.get(), "usr1\n"), HasSubstr("usr1"));
  EXPECT_EQ(Runvm({"kill", id, "SIGKILL"}).code, 0);
  EXPECT_EQ(AwaitStatus(id, "stopped"), "stopped");
  EXPECT_EQ(Runvm({"delete", id}).code, 0);
  ExpectNothingLeft(id);
}

TEST_F(OciTest, ReadonlyRootCapabilitiesAndSeccompAreEnforcedInTheGuest) {
  bundle_.spec.root.readonly = true;
  // Only CAP_CHOWN (bit 0) and CAP_KILL (bit 5) stay: CAP_NET_RAW (bit 13) and the rest are gone.
  const std::vector<std::string> kept = {"CAP_CHOWN", "CAP_KILL"};
  bundle_.spec.process.capabilities =
      oci::Capabilities{.bounding = kept, .effective = kept, .permitted = kept};
  bundle_.spec.linux.seccomp = oci::Seccomp{
      .default_action = "SCMP_ACT_ALLOW",
      .architectures = {"SCMP_ARCH_X86_64"},
      .syscalls = {{.names = {"mkdir", "mkdirat"}, .action = "SCMP_ACT_ERRNO", .errno_ret = 1}}};
  bundle_.spec.process.args = {
      "sh", "-c",
      "touch /new 2>/dev/null && echo root-writable || echo root-readonly;"
      " grep CapEff /proc/self/status; mkdir /tmp/d 2>/dev/null && echo mkdir-ran ||"
      " echo mkdir-denied"};
  bundle_.Save();
  const std::string id = NewId();
  CommandResult r = Runvm({"run", "--bundle", bundle_.path, id});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "root-readonly\nCapEff:\t0000000000000021\nmkdir-denied\n");
  // Nothing reached the bundle's rootfs either.
  EXPECT_FALSE(std::filesystem::exists(bundle_.rootfs + "/new"));
}

TEST_F(OciTest, ATerminalThroughTheConsoleSocketWithItsSize) {
  bundle_.spec.process.terminal = true;
  bundle_.spec.process.args = {
      "sh", "-c",
      "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; tty; read line; stty size; echo got:$line; exit 4"};
  bundle_.Save();
  const std::string id = NewId();
  const std::string socket = dir_.path() + "/console.sock";
  ASSERT_OK_AND_ASSIGN(Fd listener, ListenUnix(socket));
  EngineIo io = Create({"create", "--bundle", bundle_.path, "--console-socket", socket, id});
  ASSERT_EQ(io.create.code, 0) << ReadFile(log_).value_or("");
  // With a terminal the container keeps only the pty: create's own stdout and stderr end when
  // create has exited, so a caller reading them to the end returns.
  EXPECT_TRUE(EndsWithin(io.stdout_r.get(), absl::Seconds(10))) << "create's stdout stays open";
  EXPECT_TRUE(EndsWithin(io.stderr_r.get(), absl::Seconds(10))) << "create's stderr stays open";
  Fd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(conn.valid());
  ASSERT_OK_AND_ASSIGN(Fd master, ReceiveFd(conn.get()));
  winsize ws{.ws_row = 40, .ws_col = 100};
  ASSERT_EQ(::ioctl(master.get(), TIOCSWINSZ, &ws), 0);
  const int pid = State(id)["pid"];
  ASSERT_EQ(Runvm({"start", id}).code, 0);
  // What sh writes before it reads may arrive in one read with is-a-tty, or later.
  std::string out = ReadUntil(master.get(), "is-a-tty");
  EXPECT_THAT(out, HasSubstr("is-a-tty"));
  ASSERT_EQ(::write(master.get(), "typed\r", 6), 6);
  out += ReadUntil(master.get(), "got:typed");
  EXPECT_THAT(out, HasSubstr("40 100")) << "the master's size reached the guest's terminal";
  EXPECT_THAT(out, HasSubstr("/dev/pts/0")) << "the pty is the container's own";
  EXPECT_THAT(out, HasSubstr("got:typed"));
  ASSERT_OK_AND_ASSIGN(int status, WaitForExit(pid, absl::Seconds(60)));
  EXPECT_EQ(status, 4);
}

TEST_F(OciTest, RunDetachedReturnsAndTheContainerRuns) {
  bundle_.spec.process.args = {"sleep", "1000"};
  bundle_.Save();
  const std::string id = NewId();
  // Like create, run -d leaves the container holding the stdio it was given.
  EngineIo io = Create({"run", "-d", "--bundle", bundle_.path, id});
  ASSERT_EQ(io.create.code, 0) << ReadFile(log_).value_or("");
  EXPECT_EQ(State(id)["status"], "running");
  CommandResult refused = Runvm({"delete", id});
  EXPECT_EQ(refused.code, 1);
  EXPECT_THAT(refused.err, HasSubstr("cannot delete container " + id + " that is not stopped"));
  EXPECT_EQ(Runvm({"delete", "--force", id}).code, 0);
  ExpectNothingLeft(id);
}

TEST_F(OciTest, ExecRunsFurtherProcessesWithTheirOwnShimsAndGivesTheirPortsBack) {
  bundle_.spec.process.args = {"sleep", "1000"};
  bundle_.Save();
  const std::string id = NewId();
  EngineIo init = Create({"run", "-d", "--bundle", bundle_.path, id});
  ASSERT_EQ(init.create.code, 0) << ReadFile(log_).value_or("");
  // In the foreground, with runc's flags; the command's own options are not runvm's.
  CommandResult r = Runvm({"exec", id, "sh", "-c", "echo $(hostname) here; exit 6"});
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_EQ(r.out, "runvm here\n");
  r = Runvm({"exec", "--user", "1000:1000", "--cwd", "/tmp", "-e", "X=1", "-e", "Y=2", id, "sh",
             "-c", "id -u; pwd; echo $X$Y"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "1000\n/tmp\n12\n");
  // As containerd's shim calls it: --process F --detach --pid-file P; the shim's status is the
  // process's.
  const std::string process = dir_.Write(
      "process.json",
      R"({"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", "echo detached; exit 2"],
          "env": ["PATH=/bin"], "cwd": "/"})");
  const std::string pid_file = dir_.path() + "/exec.pid";
  EngineIo io = Create({"exec", "--process", process, "--detach", "--pid-file", pid_file, id});
  ASSERT_EQ(io.create.code, 0) << ReadFile(log_).value_or("");
  ASSERT_OK_AND_ASSIGN(std::string pid_text, ReadFile(pid_file));
  int pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(pid_text, &pid)) << pid_text;
  ASSERT_OK_AND_ASSIGN(int status, WaitForExit(pid, absl::Seconds(60)));
  EXPECT_EQ(status, 2);
  EXPECT_EQ(ReadAll(io.stdout_r.get()), "detached\n");
  // Finished execs give their ports back: the init's and the newest exec's remain.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Runvm({"exec", id, "sh", "-c", "exit 0"}).code, 0);
  Json sandbox = Json::parse(Runvm({"sandbox", "state", id}).out, nullptr, false);
  int ports = 0;
  for (const Json& d : sandbox.value("devices", Json::array()))
    ports += d["kind"] == "virtserialport";
  EXPECT_EQ(ports, 2);
  EXPECT_EQ(State(id)["status"], "running") << "execs leave the container running";
  ASSERT_EQ(Runvm({"kill", id, "KILL"}).code, 0);
  EXPECT_EQ(AwaitStatus(id, "stopped"), "stopped");
  EXPECT_THAT(Runvm({"exec", id, "true"}).err, HasSubstr("cannot exec in a stopped container"));
}

TEST_F(OciTest, SignalsSentToTheShimOrToRunInTheForegroundReachTheWorkload) {
  constexpr char kTrap[] = "trap 'echo term; exit 7' TERM; echo ready; while :; do sleep 0.1; done";
  // containerd kills an exec by the pid it was given (--pid-file): the shim's.
  bundle_.spec.process.args = {"sleep", "1000"};
  bundle_.Save();
  const std::string id = NewId();
  EngineIo init = Create({"run", "-d", "--bundle", bundle_.path, id});
  ASSERT_EQ(init.create.code, 0) << ReadFile(log_).value_or("");
  const std::string pid_file = dir_.path() + "/exec.pid";
  EngineIo exec = Create({"exec", "--detach", "--pid-file", pid_file, id, "sh", "-c", kTrap});
  ASSERT_EQ(exec.create.code, 0) << ReadFile(log_).value_or("");
  ASSERT_OK_AND_ASSIGN(std::string pid_text, ReadFile(pid_file));
  int pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(pid_text, &pid)) << pid_text;
  EXPECT_EQ(ReadUntil(exec.stdout_r.get(), "ready\n"), "ready\n");
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  ASSERT_OK_AND_ASSIGN(int status, WaitForExit(pid, absl::Seconds(60)));
  EXPECT_EQ(status, 7) << "the trap ran in the guest";
  EXPECT_EQ(ReadAll(exec.stdout_r.get()), "term\n");
  EXPECT_EQ(State(id)["status"], "running");

  // runc run in the foreground passes on what it is sent, then removes the container.
  bundle_.spec.process.args = {"sh", "-c", kTrap};
  bundle_.Save();
  const std::string fg = NewId();
  absl::StatusOr<Pipe> out = MakePipe();
  ASSERT_THAT(out, IsOk());
  SpawnOptions o{.argv = Argv({"run", "--bundle", bundle_.path, fg}),
                 .env = std::vector<std::string>{"RUNVM_CONFIG=" + config_}};
  o.fds = {{1, out->write.get()}, {2, out->write.get()}};
  ASSERT_OK_AND_ASSIGN(Child run, Spawn(o));
  out->write.reset();
  EXPECT_EQ(ReadUntil(out->read.get(), "ready\n"), "ready\n");
  ASSERT_THAT(run.Signal(SIGTERM), IsOk());
  ASSERT_OK_AND_ASSIGN(ExitStatus ran, run.Wait(absl::Now() + absl::Seconds(60)));
  EXPECT_EQ(ran.ShellCode(), 7);
  EXPECT_EQ(ReadAll(out->read.get()), "term\n");
  EXPECT_THAT(Runvm({"state", fg}).err, HasSubstr("does not exist"));
}

TEST_F(OciTest, BadInputGetsRuncsErrorsAndChangesNothing) {
  const std::string id = NewId();
  for (const std::vector<std::string>& call :
       {std::vector<std::string>{"state", id}, {"start", id}, {"kill", id}, {"delete", id}}) {
    CommandResult r = Runvm(call);
    EXPECT_EQ(r.code, 1) << call[0];
    EXPECT_THAT(r.err, HasSubstr("container " + id + " does not exist")) << call[0];
    EXPECT_EQ(LastLogLine().value("msg", ""), "container " + id + " does not exist");
  }
  EXPECT_EQ(Runvm({"delete", "--force", id}).code, 0) << "an unknown id is no error with --force";
  EXPECT_THAT(Runvm({"kill", id, "NOSUCHSIG"}).err, HasSubstr("unknown signal \"NOSUCHSIG\""));

  // A malformed config.json: named, nothing created.
  ASSERT_THAT(WriteFileAtomic(bundle_.path + "/config.json", "{\"ociVersion\": 1"), IsOk());
  EngineIo io = Create({"create", "--bundle", bundle_.path, id});
  EXPECT_EQ(io.create.code, 1);
  EXPECT_THAT(LastLogLine().value("msg", ""), HasSubstr(bundle_.path + "/config.json"));
  EXPECT_FALSE(std::filesystem::exists(root_ + "/" + id));
  // A console socket without a terminal, and a terminal without one, as runc refuses them.
  bundle_.Save();
  io = Create({"create", "--bundle", bundle_.path, "--console-socket", "/nonexistent", id});
  EXPECT_EQ(io.create.code, 1);
  EXPECT_THAT(LastLogLine().value("msg", ""), HasSubstr("cannot use console socket"));
  bundle_.spec.process.terminal = true;
  bundle_.Save();
  io = Create({"create", "--bundle", bundle_.path, id});
  EXPECT_EQ(io.create.code, 1);
  EXPECT_THAT(LastLogLine().value("msg", ""), HasSubstr("cannot allocate tty"));
  EXPECT_FALSE(std::filesystem::exists(root_ + "/" + id));
  // A configuration the annotations may not change: refused before anything boots.
  bundle_.spec.process.terminal = false;
  bundle_.spec.annotations["io.katacontainers.config.hypervisor.kernel_params"] = "init=/x";
  bundle_.Save();
  io = Create({"create", "--bundle", bundle_.path, id});
  EXPECT_EQ(io.create.code, 1);
  EXPECT_THAT(LastLogLine().value("msg", ""), HasSubstr("kernel_params"));
  EXPECT_FALSE(std::filesystem::exists(root_ + "/" + id));
}

}  // namespace
}  // namespace runvm::e2e
