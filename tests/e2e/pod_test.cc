// Pods end to end (tests/e2e/oci_fixture.h): a sandbox container and its containers in one VM,
// exec, ps, pause/resume, update by vCPU and memory hotplug, events, list, deletion in any
// order, host cgroups, the containerd shim's calls for these commands, and bad input.
#include <sys/socket.h>
#include <sys/stat.h>

#include <map>
#include <set>
#include <tuple>

#include "tests/e2e/pod_fixture.h"

namespace runvm::e2e {
namespace {

constexpr char kCounter[] = "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done";

TEST_F(PodTest, ThreeContainersInOneVmWithExecPsPauseUpdateEventsAndList) {
  const std::string sb = PodId("sandbox"), c1 = PodId("c1"), c2 = PodId("c2");
  Bundle sandbox = PodBundle(sb, "sandbox", sb, {"sleep", "100000"});
  Bundle one = PodBundle(c1, "container", sb, {"sh", "-c", kCounter});
  Bundle two = PodBundle(c2, "container", sb, {"sleep", "100000"});
  ASSERT_NO_FATAL_FAILURE(Start(sandbox, sb));
  ASSERT_NO_FATAL_FAILURE(Start(one, c1));
  ASSERT_NO_FATAL_FAILURE(Start(two, c2));
  EXPECT_EQ(QemuCount(), 1) << "one VM for the pod";

  // Each its own rootfs and pid namespace; exec with stdout and exit status.
  ASSERT_THAT(WriteFileAtomic(one.rootfs + "/etc/me", "c1\n"), IsOk());
  ASSERT_THAT(WriteFileAtomic(two.rootfs + "/etc/me", "c2\n"), IsOk());
  for (const auto& [id, me, init] : {std::tuple{c1, "c1", "sh"}, std::tuple{c2, "c2", "sleep"}}) {
    CommandResult r = Exec(id, "cat /etc/me; cat /proc/1/comm; exit 5");
    EXPECT_EQ(r.code, 5) << r.err;
    EXPECT_EQ(r.out, absl::StrCat(me, "\n", init, "\n")) << id;
  }
  // A terminal exec, as engines ask for one.
  const std::string socket = dir_.path() + "/exec-console.sock";
  ASSERT_OK_AND_ASSIGN(Fd listener, ListenUnix(socket));
  const std::string tty_pid = dir_.path() + "/tty.pid";
  EngineIo tty = Create({"exec", "-t", "--console-socket", socket, "-d", "--pid-file", tty_pid, c2,
                         "sh", "-c", "tty; stty size; exit 3"});
  ASSERT_EQ(tty.create.code, 0) << ReadFile(log_).value_or("");
  Fd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(conn.valid());
  ASSERT_OK_AND_ASSIGN(Fd master, ReceiveFd(conn.get()));
  EXPECT_THAT(ReadUntil(master.get(), "\n"), HasSubstr("/dev/pts/"));
  ASSERT_OK_AND_ASSIGN(std::string tty_pid_text, ReadFile(tty_pid));
  int shim = 0;
  ASSERT_TRUE(absl::SimpleAtoi(tty_pid_text, &shim));
  ASSERT_OK_AND_ASSIGN(int tty_status, WaitForExit(shim, absl::Seconds(60)));
  EXPECT_EQ(tty_status, 3);

  // ps: the container's own processes.
  CommandResult ps = Runvm({"ps", c2});
  EXPECT_EQ(ps.code, 0) << ps.err;
  EXPECT_THAT(ps.out, HasSubstr("sleep 100000"));
  EXPECT_THAT(ps.out, ::testing::Not(HasSubstr("while")));

  // pause stops the counter, resume continues it; the others keep running meanwhile.
  ASSERT_GT(CounterAbove(one, 2), 2);
  ASSERT_EQ(Runvm({"pause", c1}).code, 0);
  EXPECT_EQ(State(c1)["status"], "paused");
  EXPECT_EQ(VmRunState(sb), "running") << "the VM holds other containers";
  const int64_t frozen = Counter(one);
  EXPECT_EQ(Exec(c2, "echo alive").out, "alive\n");
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(Counter(one), frozen);
  ASSERT_EQ(Runvm({"resume", c1}).code, 0);
  EXPECT_EQ(State(c1)["status"], "running");
  EXPECT_GT(CounterAbove(one, frozen), frozen);

  // update: raising CPU and memory grows the VM (nproc, MemTotal); lowering takes effect in
  // the container's cgroup.
  auto meminfo_kib = [&](const std::string& id) {
    int64_t kib = 0;
    std::string out = Exec(id, "grep MemTotal /proc/meminfo").out;
    std::vector<std::string> f = absl::StrSplit(out, ' ', absl::SkipEmpty());
    if (f.size() >= 2) (void)absl::SimpleAtoi(f[1], &kib);
    return kib;
  };
  EXPECT_EQ(Exec(c1, "nproc").out, "1\n");
  const int64_t before = meminfo_kib(c1);
  const std::string raise = R"({"cpu": {"quota": 100000, "period": 100000},
                                "memory": {"limit": 268435456}})";
  CommandResult up = Runvm({"update", "--resources", "-", c1}, &raise);
  ASSERT_EQ(up.code, 0) << up.err;
  EXPECT_EQ(Exec(c1, "nproc").out, "2\n") << "a vCPU was plugged";
  EXPECT_GE(meminfo_kib(c1) - before, 200 * 1024) << "256 MiB were plugged";
  EXPECT_EQ(Exec(c1, "cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.max").out,
            "100000 100000\n268435456\n");
  CommandResult down = Runvm({"update", "--cpu-quota", "50000", "--memory", "128m", c1});
  ASSERT_EQ(down.code, 0) << down.err;
  EXPECT_EQ(Exec(c1, "cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.max").out,
            "50000 100000\n134217728\n");

  // events --stats: one line of runc's stats, with the memory the container uses.
  CommandResult ev = Runvm({"events", "--stats", c1});
  ASSERT_EQ(ev.code, 0) << ev.err;
  Json stats = Json::parse(ev.out, nullptr, false);
  EXPECT_EQ(stats.value("type", ""), "stats");
  EXPECT_EQ(stats.value("id", ""), c1);
  EXPECT_GT(stats["data"]["memory"]["usage"].value("usage", int64_t{0}), 0) << ev.out;
  EXPECT_EQ(stats["data"]["memory"]["usage"].value("limit", int64_t{0}), 134217728);
  EXPECT_GT(stats["data"]["cpu"]["usage"].value("total", int64_t{0}), 0);
  EXPECT_GT(stats["data"]["pids"].value("current", int64_t{0}), 0);
  // Without --stats: a line per interval.
  CommandResult stream =
      ::runvm::testing::RunCommand(Argv({"events", "--interval", "100ms", c1}),
                                   {"RUNVM_CONFIG=" + config_}, absl::Milliseconds(1500));
  EXPECT_GE(std::count(stream.out.begin(), stream.out.end(), '\n'), 2) << stream.out;

  // list shows all three, running.
  CommandResult list = Runvm({"list", "--format", "json"});
  Json all = Json::parse(list.out, nullptr, false);
  std::map<std::string, std::string> seen;
  for (const Json& s : all) seen[s.value("id", "")] = s.value("status", "");
  EXPECT_EQ(seen, (std::map<std::string, std::string>{
                      {sb, "running"}, {c1, "running"}, {c2, "running"}}));

  // Deleting a member removes what it added: its port and rootfs share; the VM stays.
  ASSERT_EQ(Runvm({"kill", c2, "KILL"}).code, 0);
  EXPECT_EQ(AwaitStatus(c2, "stopped"), "stopped");
  ASSERT_EQ(Runvm({"delete", c2}).code, 0);
  EXPECT_FALSE(std::filesystem::exists(root_ + "/" + c2));
  absl::StatusOr<std::string> mounts = ReadFile("/proc/self/mounts");
  EXPECT_THAT(*mounts, ::testing::Not(HasSubstr(c2)));
  EXPECT_EQ(QemuCount(), 1);
  EXPECT_EQ(Exec(c1, "echo still").out, "still\n");
}

TEST_F(PodTest, DeletingTheSandboxFirstStopsTheVmAndLeavesNothing) {
  const std::string sb = PodId("sandbox"), c1 = PodId("c1");
  ASSERT_NO_FATAL_FAILURE(Start(PodBundle(sb, "sandbox", sb, {"sleep", "100000"}), sb));
  ASSERT_NO_FATAL_FAILURE(Start(PodBundle(c1, "container", sb, {"sleep", "100000"}), c1));
  ASSERT_EQ(Runvm({"delete", "--force", sb}).code, 0);
  EXPECT_EQ(QemuCount(), 0);
  EXPECT_EQ(AwaitStatus(c1, "stopped"), "stopped") << "its VM is gone";
  EXPECT_THAT(Runvm({"exec", c1, "true"}).err, HasSubstr("cannot exec in a stopped container"));
  ASSERT_EQ(Runvm({"delete", c1}).code, 0);
  ExpectPodGone();
}

TEST_F(PodTest, AContainerAloneInItsVmPausesTheVmToo) {
  const std::string id = PodId("alone");
  Bundle b = PodBundle(id, "", "", {"sh", "-c", kCounter});
  ASSERT_NO_FATAL_FAILURE(Start(b, id));
  ASSERT_GT(CounterAbove(b, 2), 2);
  ASSERT_EQ(Runvm({"pause", id}).code, 0);
  EXPECT_EQ(VmRunState(id), "paused");
  EXPECT_EQ(State(id)["status"], "paused");
  EXPECT_THAT(Runvm({"ps", id}).err, HasSubstr("paused with its VM: resume it first"));
  ASSERT_EQ(Runvm({"resume", id}).code, 0);
  EXPECT_EQ(VmRunState(id), "running");
  const int64_t at = Counter(b);
  EXPECT_GT(CounterAbove(b, at), at);
  // A paused container can still be killed.
  ASSERT_EQ(Runvm({"pause", id}).code, 0);
  CommandResult kill = Runvm({"kill", id, "KILL"});
  EXPECT_EQ(kill.code, 0) << kill.err;
  EXPECT_EQ(AwaitStatus(id, "stopped"), "stopped");
  EXPECT_EQ(Runvm({"delete", id}).code, 0);
  ExpectPodGone();
}

TEST_F(PodTest, ContainerdShimCallsForExecPsPauseResumeUpdateReplay) {
  const std::string sb = PodId("sandbox"), c1 = PodId("c1");
  ASSERT_NO_FATAL_FAILURE(Start(PodBundle(sb, "sandbox", sb, {"sleep", "100000"}), sb));
  ASSERT_NO_FATAL_FAILURE(Start(PodBundle(c1, "container", sb, {"sleep", "100000"}), c1));
  // exec --process F --detach --pid-file P ID
  const std::string process = dir_.Write(
      "process.json",
      R"({"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", "echo exec-out; exit 9"],
          "env": ["PATH=/bin"], "cwd": "/"})");
  const std::string pid_file = dir_.path() + "/exec.pid";
  EngineIo io = Create({"exec", "--process", process, "--detach", "--pid-file", pid_file, c1});
  ASSERT_EQ(io.create.code, 0) << ReadFile(log_).value_or("");
  ASSERT_OK_AND_ASSIGN(std::string pid_text, ReadFile(pid_file));
  int pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(pid_text, &pid)) << pid_text;
  ASSERT_OK_AND_ASSIGN(int status, WaitForExit(pid, absl::Seconds(60)));
  EXPECT_EQ(status, 9);
  EXPECT_EQ(ReadAll(io.stdout_r.get()), "exec-out\n");
  // ... with --console-socket S and a terminal process.
  const std::string tty_process = dir_.Write(
      "tty-process.json",
      R"({"terminal": true, "user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", "tty; exit 4"],
          "env": ["PATH=/bin"], "cwd": "/"})");
  const std::string socket = dir_.path() + "/console.sock";
  ASSERT_OK_AND_ASSIGN(Fd listener, ListenUnix(socket));
  EngineIo tty = Create({"exec", "--process", tty_process, "--detach", "--pid-file", pid_file,
                         "--console-socket", socket, c1});
  ASSERT_EQ(tty.create.code, 0) << ReadFile(log_).value_or("");
  Fd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(conn.valid());
  ASSERT_OK_AND_ASSIGN(Fd master, ReceiveFd(conn.get()));
  EXPECT_THAT(ReadUntil(master.get(), "\n"), HasSubstr("/dev/pts/"));
  ASSERT_OK_AND_ASSIGN(pid_text, ReadFile(pid_file));
  ASSERT_TRUE(absl::SimpleAtoi(pid_text, &pid)) << pid_text;
  ASSERT_OK_AND_ASSIGN(status, WaitForExit(pid, absl::Seconds(60)));
  EXPECT_EQ(status, 4);
  // ps --format json ID: the pids, as runc prints them.
  CommandResult ps = Runvm({"ps", "--format", "json", c1});
  ASSERT_EQ(ps.code, 0) << ps.err;
  Json pids = Json::parse(ps.out, nullptr, false);
  ASSERT_TRUE(pids.is_array()) << ps.out;
  const Json record = Json::parse(*ReadFile(root_ + "/" + c1 + "/container.json"));
  EXPECT_EQ(pids, Json::array({record["data"]["guest_pid"]})) << "its init's pid in the guest";
  // pause ID, resume ID, update --resources - ID (JSON on stdin).
  for (const std::vector<std::string>& call :
       {std::vector<std::string>{"pause", c1}, {"resume", c1}}) {
    CommandResult r = Runvm(call);
    EXPECT_EQ(r.code, 0) << absl::StrJoin(call, " ") << ": " << r.err;
  }
  const std::string resources = R"({"memory": {"limit": 67108864}, "pids": {"limit": 50}})";
  CommandResult up = Runvm({"update", "--resources", "-", c1}, &resources);
  EXPECT_EQ(up.code, 0) << up.err;
  EXPECT_EQ(Exec(c1, "cat /sys/fs/cgroup/pids.max").out, "50\n");
}

TEST_F(PodTest, BadInputIsRefusedClearlyAndChangesNothing) {
  const std::string sb = PodId("sandbox"), c1 = PodId("c1");
  ASSERT_NO_FATAL_FAILURE(Start(PodBundle(sb, "sandbox", sb, {"sleep", "100000"}), sb));
  ASSERT_NO_FATAL_FAILURE(Start(PodBundle(c1, "container", sb, {"sleep", "100000"}), c1));
  // Beyond default_maxvcpus (this machine's CPUs) or maxmem: refused, nothing changed.
  const Json before = Json::parse(*ReadFile(root_ + "/" + c1 + "/container.json"));
  const std::string devices = Runvm({"sandbox", "state", sb}).out;
  ASSERT_THAT(devices, HasSubstr("\"run_dir\"")) << "the pod's VM record";
  CommandResult cpus = Runvm({"update", "--cpu-quota", "6400000", "--cpu-period", "100000", c1});
  EXPECT_EQ(cpus.code, 1);
  EXPECT_THAT(cpus.err, HasSubstr("vCPUs (default_vcpus 1 plus its containers' CPU limits); "
                                  "default_maxvcpus is"));
  CommandResult mem = Runvm({"update", "--memory", "1t", c1});
  EXPECT_EQ(mem.code, 1);
  EXPECT_THAT(mem.err, HasSubstr("MiB of memory"));
  EXPECT_THAT(mem.err, HasSubstr("maxmem"));
  EXPECT_EQ(Json::parse(*ReadFile(root_ + "/" + c1 + "/container.json")), before);
  EXPECT_EQ(Runvm({"sandbox", "state", sb}).out, devices) << "no device was plugged";
  EXPECT_EQ(Exec(c1, "cat /sys/fs/cgroup/cpu.max").out, "max 100000\n");
  EXPECT_THAT(Runvm({"update", "--memory", "lots", c1}).err, HasSubstr("--memory \"lots\""));
  EXPECT_THAT(Runvm({"update", "--kernel-memory", "1m", c1}).err, HasSubstr("not supported"));
  const std::string device_rules = R"({"devices": [{"allow": true, "access": "rwm"}]})";
  CommandResult devices_update = Runvm({"update", "--resources", "-", c1}, &device_rules);
  EXPECT_EQ(devices_update.code, 0) << devices_update.err;
  EXPECT_THAT(ReadFile(log_).value_or(""), HasSubstr("device rules are not changed"));

  // A container naming a sandbox that does not exist.
  const std::string orphan = PodId("orphan");
  CommandResult none = Runvm(
      {"create", "--bundle", PodBundle(orphan, "container", "no-such-pod", {"true"}).path, orphan});
  EXPECT_EQ(none.code, 1);
  EXPECT_THAT(none.err,
              HasSubstr("container " + orphan + ": its sandbox no-such-pod does not exist"));
  EXPECT_FALSE(std::filesystem::exists(root_ + "/" + orphan));
  const std::string typo = PodId("typo");
  Bundle bad = PodBundle(typo, "container", sb, {"true"});
  bad.spec.annotations["io.kubernetes.cri.container-type"] = "sidecar";
  bad.Save();
  EXPECT_THAT(Runvm({"create", "--bundle", bad.path, typo}).err,
              HasSubstr("\"sidecar\" is neither sandbox nor container"));

  // exec into and pause of a stopped container.
  ASSERT_EQ(Runvm({"kill", c1, "KILL"}).code, 0);
  EXPECT_EQ(AwaitStatus(c1, "stopped"), "stopped");
  EXPECT_THAT(Runvm({"exec", c1, "true"}).err, HasSubstr("cannot exec in a stopped container"));
  CommandResult pause = Runvm({"pause", c1});
  EXPECT_EQ(pause.code, 1);
  EXPECT_THAT(pause.err, HasSubstr("container not running"));
  EXPECT_THAT(Runvm({"resume", c1}).err, HasSubstr("container not paused"));
  EXPECT_EQ(State(c1)["status"], "stopped");
}

// Host cgroups on this machine's hierarchies (cgroup v1 here, with the hybrid cgroup2).
class PodCgroupTest : public PodTest {
 protected:
  void SetUp() override {
    PodTest::SetUp();
    absl::StatusOr<HostCgroupsView> v = View();
    if (!v.ok()) GTEST_SKIP() << v.status();
    top_ = absl::StrCat("/runvm-e2e-", ::getpid());
  }
  void TearDown() override {
    PodTest::TearDown();
    absl::StatusOr<HostCgroupsView> v = View();
    ASSERT_TRUE(v.ok());
    for (const std::string& h : v->hierarchies) {
      EXPECT_FALSE(std::filesystem::exists(h + top_)) << h + top_ << " is left";
      EXPECT_FALSE(std::filesystem::exists(h + "/runvm_overhead/" + sandbox_)) << "overhead";
    }
  }
  struct HostCgroupsView {
    std::vector<std::string> hierarchies;  // mount points
  };
  static absl::StatusOr<HostCgroupsView> View() {
    HostCgroupsView v;
    ASSIGN_OR_RETURN(std::string info, ReadFile("/proc/self/mountinfo", 8 << 20));
    for (absl::string_view line : absl::StrSplit(info, '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
      if (f.size() > 9 && f[3] == "/" && absl::StrContains(line, " - cgroup")) {
        v.hierarchies.emplace_back(f[4]);
      }
    }
    if (v.hierarchies.empty()) return absl::NotFoundError("no cgroup hierarchy");
    return v;
  }
  // The pids in `cgroup`'s cgroup.procs of the memory hierarchy (or the unified one).
  std::set<int> Procs(const std::string& cgroup, const char* file = "cgroup.procs") {
    std::set<int> out;
    const absl::StatusOr<HostCgroupsView> view = View();
    if (!view.ok()) return out;
    for (const std::string& h : view->hierarchies) {
      if (!absl::EndsWith(h, "/memory") && !absl::EndsWith(h, "/cpu") && h != "/sys/fs/cgroup") {
        continue;
      }
      absl::StatusOr<std::string> text = ReadFile(h + cgroup + "/" + file);
      if (!text.ok()) continue;
      for (absl::string_view l : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
        int pid = 0;
        if (absl::SimpleAtoi(l, &pid)) out.insert(pid);
      }
    }
    return out;
  }
  int QemuPid() {
    for (const ProcessIdentity& p : Helpers()) {
      if (absl::StrContains(p.exe, "qemu-system")) return p.pid;
    }
    return -1;
  }
  std::string top_, sandbox_;
};

TEST_F(PodCgroupTest, SandboxCgroupOnlyPutsEverythingInTheSandboxsCgroup) {
  ASSERT_THAT(
      WriteFileAtomic(config_, *ReadFile(config_) + "[runtime]\nsandbox_cgroup_only = true\n"),
      IsOk());
  sandbox_ = PodId("sandbox");
  const std::string c1 = PodId("c1");
  Bundle sb = PodBundle(sandbox_, "sandbox", sandbox_, {"sleep", "100000"});
  sb.spec.linux.cgroups_path = top_ + "/pod/" + sandbox_;
  sb.Save();
  Bundle one = PodBundle(c1, "container", sandbox_, {"sleep", "100000"});
  one.spec.linux.cgroups_path = top_ + "/pod/" + c1;
  one.Save();
  ASSERT_NO_FATAL_FAILURE(Start(sb, sandbox_));
  ASSERT_NO_FATAL_FAILURE(Start(one, c1));
  const std::string cgroup = top_ + "/pod/runvm_" + sandbox_;
  const std::set<int> procs = Procs(cgroup);
  EXPECT_TRUE(procs.count(QemuPid())) << "QEMU";
  EXPECT_TRUE(procs.count(State(sandbox_)["pid"].get<int>())) << "the sandbox's shim";
  EXPECT_TRUE(procs.count(State(c1)["pid"].get<int>())) << "the container's shim";
  ASSERT_EQ(Runvm({"delete", "--force", c1}).code, 0);
  ASSERT_EQ(Runvm({"delete", "--force", sandbox_}).code, 0);
}

TEST_F(PodCgroupTest, WithoutSandboxCgroupOnlyTheVcpusGoToThePodAndQemuToTheOverhead) {
  sandbox_ = PodId("sandbox");
  const std::string c1 = PodId("c1");
  Bundle sb = PodBundle(sandbox_, "sandbox", sandbox_, {"sleep", "100000"});
  sb.spec.linux.cgroups_path = top_ + "/pod/" + sandbox_;
  sb.Save();
  Bundle one = PodBundle(c1, "container", sandbox_, {"sleep", "100000"});
  one.spec.linux.cgroups_path = top_ + "/pod/" + c1;
  one.spec.linux.resources =
      oci::Resources{.cpu = oci::CpuResources{.quota = 100000, .period = 100000}};
  one.Save();
  ASSERT_NO_FATAL_FAILURE(Start(sb, sandbox_));
  ASSERT_NO_FATAL_FAILURE(Start(one, c1));
  const int qemu = QemuPid();
  if (View().value_or(HostCgroupsView{}).hierarchies.size() == 1) {
    GTEST_SKIP() << "cgroup v2 only: QEMU goes whole";
  }
  EXPECT_TRUE(Procs("/runvm_overhead/" + sandbox_).count(qemu)) << "QEMU's other threads";
  // Both vCPUs (the boot one and the one c1's limit plugged) are in the pod's cgroup.
  const std::set<int> tasks = Procs(top_ + "/pod/runvm_" + sandbox_, "tasks");
  int vcpus = 0;  // QEMU's threads there (QEMU does not name its threads unless asked)
  for (int tid : tasks) {
    vcpus += std::filesystem::exists(absl::StrCat("/proc/", qemu, "/task/", tid));
  }
  int threads = 0;
  for ([[maybe_unused]] const auto& t :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", qemu, "/task"))) {
    ++threads;
  }
  EXPECT_GT(threads, vcpus) << "QEMU's other threads stay out";
  EXPECT_EQ(vcpus, 2) << "vCPU threads in the pod's cgroup";
  EXPECT_TRUE(Procs(top_ + "/pod/runvm_" + c1).count(State(c1)["pid"].get<int>()))
      << "each shim in its container's cgroup";
  ASSERT_EQ(Runvm({"delete", "--force", c1}).code, 0);
  EXPECT_FALSE(std::filesystem::exists("/sys/fs/cgroup/memory" + top_ + "/pod/runvm_" + c1));
  ASSERT_EQ(Runvm({"delete", "--force", sandbox_}).code, 0);
}

TEST_F(PodCgroupTest, SystemdSlicesNameTheCgroup) {
  ASSERT_THAT(
      WriteFileAtomic(config_, *ReadFile(config_) + "[runtime]\nsandbox_cgroup_only = true\n"),
      IsOk());
  sandbox_ = PodId("sandbox");
  const std::string slice = absl::StrCat("runvme2e", ::getpid(), "-pod.slice");
  top_ = absl::StrCat("/runvme2e", ::getpid(), ".slice");
  Bundle sb = PodBundle(sandbox_, "sandbox", sandbox_, {"sleep", "100000"});
  sb.spec.linux.cgroups_path = slice + ":cri:" + sandbox_;
  sb.Save();
  EngineIo io = Create({"--systemd-cgroup", "create", "--bundle", sb.path, sandbox_});
  ASSERT_EQ(io.create.code, 0) << ReadFile(log_).value_or("");
  EXPECT_TRUE(Procs(top_ + "/" + slice + "/runvm_" + sandbox_).count(QemuPid()))
      << "/runvme2eN.slice/runvme2eN-pod.slice/runvm_<id>";
  ASSERT_EQ(Runvm({"--systemd-cgroup", "delete", "--force", sandbox_}).code, 0);
}

}  // namespace
}  // namespace runvm::e2e
