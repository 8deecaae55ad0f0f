// Boot and stop real sandbox VMs under TCG with the guest built by guest/build.sh.
#include "hypervisor/qemu/vm.h"

#include "hypervisor/qemu/vm_record.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/process.h"
#include "base/unix_socket.h"
#include "gtest/gtest.h"
#include "runtime/sandbox/agent_client.h"
#include "tests/testing/guest_shell.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace runvm::qemu {
namespace {

using ::runvm::testing::GuestResult;
using ::runvm::testing::GuestShell;
using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::runvm::testing::TempDir;
using ::testing::HasSubstr;

const std::string kGuest = RUNVM_GUEST_DIR;

absl::Time Boot() { return absl::Now() + absl::Seconds(60); }  // TCG on a loaded 2-core host

class VmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access((kGuest + "/vmlinuz").c_str(), R_OK), 0)
        << "the guest is missing: run scripts/setup.sh (guest/build.sh)";
  }

  VmSpec Spec(const std::string& id = "vm-test") {
    config::Config c;
    c.hypervisor.kernel = kGuest + "/vmlinuz";
    c.hypervisor.initrd = kGuest + "/initrd.img";
    c.hypervisor.image_loader = kGuest + "/image-loader.img";
    c.hypervisor.default_memory = 512;
    c.ApplyClamps({.cpus = 2});
    return VmSpec{.config = c.hypervisor,
                  .sandbox_id = id,
                  .accelerator = "tcg",
                  .host_memory_mib = 4096,
                  .socket_base = dir_.path() + "/vm",
                  .start_timeout = absl::Seconds(20)};
  }

  // Starts, connects to the guest, runs `check`, stops, and checks that nothing is left.
  void ExpectNothingLeft(const RunningVm& vm) {
    EXPECT_FALSE(IsAlive(vm.qemu)) << "QEMU " << vm.qemu.pid << " survived";
    if (vm.virtiofsd) {
      EXPECT_FALSE(IsAlive(*vm.virtiofsd)) << "virtiofsd survived";
    }
    if (vm.watcher) {
      EXPECT_FALSE(IsAlive(*vm.watcher)) << "the watcher survived";
    }
    EXPECT_FALSE(std::filesystem::exists(vm.run_dir)) << vm.run_dir;
  }

  TempDir dir_;
};

TEST_F(VmTest, BootsFromTheInitrdAndAnswersOnTheAgentPort) {
  ASSERT_OK_AND_ASSIGN(RunningVm vm, StartVm(Spec()));
  EXPECT_TRUE(IsAlive(vm.qemu));
  ASSERT_TRUE(vm.virtiofsd.has_value());
  EXPECT_TRUE(IsAlive(*vm.virtiofsd));
  ASSERT_TRUE(vm.watcher.has_value());
  EXPECT_EQ(ReadFile("/proc/" + std::to_string(vm.watcher->pid) + "/comm").value_or(""),
            "runvm-watch\n");
  EXPECT_EQ(vm.qemu.exe, "/usr/bin/qemu-system-x86_64");
  std::string ready;
  absl::StatusOr<GuestShell> shell = GuestShell::Connect(vm.agent_socket(), Boot(), &ready);
  ASSERT_THAT(shell, IsOk());
  EXPECT_THAT(ready, HasSubstr(" on 6."));
  ASSERT_OK_AND_ASSIGN(GuestResult r, shell->Run("cat /proc/cmdline", Boot()));
  EXPECT_THAT(r.output, HasSubstr("runvm.agent_port=agent.0"));
  ASSERT_THAT(StopVm(vm), IsOk());
  ExpectNothingLeft(vm);
  EXPECT_THAT(StopVm(vm), IsOk()) << "stopping a stopped VM succeeds";
}

TEST_F(VmTest, TheAgentServesTheNextClientAfterOneDiedMidFrame) {
  ASSERT_OK_AND_ASSIGN(RunningVm vm, StartVm(Spec()));
  {
    ASSERT_OK_AND_ASSIGN(AgentClient first, AgentClient::Connect(vm.agent_socket(), Boot()));
    ASSERT_OK_AND_ASSIGN(agent_proto::GuestDetails d, first.GuestDetails(Boot()));
    EXPECT_EQ(d.memory_block_size_bytes, 128 << 20);
    EXPECT_GE(d.online_cpus, 1);
  }
  {
    // A client that sends half a request and dies: the real port (no EOF in between).
    ASSERT_OK_AND_ASSIGN(Fd raw, ConnectUnix(vm.agent_socket()));
    std::string frame = agent_proto::EncodeFrame(
        {.type = agent_proto::kRun,
         .id = 7,
         .fields = agent_proto::ToFields(agent_proto::RunRequest{.argv = {"/bin/true"}})});
    ASSERT_EQ(::write(raw.get(), frame.data(), 25), 25);
  }
  ASSERT_OK_AND_ASSIGN(AgentClient next, AgentClient::Connect(vm.agent_socket(), Boot()));
  ASSERT_OK_AND_ASSIGN(agent_proto::RunResult r, next.Run({.argv = {"/bin/uname", "-r"}}, Boot()));
  EXPECT_EQ(r.out, next.hello().kernel + "\n");
  ASSERT_THAT(StopVm(vm), IsOk());
}

TEST_F(VmTest, VirtioFsSharesFilesWithTheGuest) {
  ASSERT_OK_AND_ASSIGN(RunningVm vm, StartVm(Spec()));
  std::ofstream(vm.shared_dir + "/hello.txt") << "written on the host\n";
  ASSERT_OK_AND_ASSIGN(GuestShell shell, GuestShell::Connect(vm.agent_socket(), Boot()));
  ASSERT_OK_AND_ASSIGN(GuestResult mounts, shell.Run("grep virtiofs /proc/mounts", Boot()));
  EXPECT_THAT(mounts.output, HasSubstr("kataShared /run/shared virtiofs"));
  ASSERT_OK_AND_ASSIGN(GuestResult r, shell.Run("cat /run/shared/hello.txt", Boot()));
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.output, "written on the host");
  ASSERT_THAT(StopVm(vm), IsOk());
  ExpectNothingLeft(vm);
}

TEST_F(VmTest, ADirectoryBoundIntoTheShareAfterBootReachesTheGuestAndSurvivesStop) {
  // How a container's rootfs gets into a running sandbox: bound into the shared directory.
  TempDir bundle;
  bundle.Write("rootfs/marker", "from the bundle\n");
  ASSERT_OK_AND_ASSIGN(RunningVm vm, StartVm(Spec()));
  ASSERT_OK_AND_ASSIGN(GuestShell shell, GuestShell::Connect(vm.agent_socket(), Boot()));
  const std::string target = vm.shared_dir + "/c1";
  ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
  ASSERT_EQ(::mount((bundle.path() + "/rootfs").c_str(), target.c_str(), nullptr, MS_BIND, nullptr),
            0)
      << std::strerror(errno);
  ASSERT_OK_AND_ASSIGN(GuestResult r, shell.Run("cat /run/shared/c1/marker", Boot()));
  EXPECT_EQ(r.output, "from the bundle");
  ASSERT_THAT(StopVm(vm), IsOk());
  ExpectNothingLeft(vm);
  EXPECT_EQ(ReadFile(bundle.path() + "/rootfs/marker").value_or(""), "from the bundle\n")
      << "stop unmounts; it never removes through a mount";
}

TEST_F(VmTest, TheGuestCanAddNoNameAtTheTopOfTheShareButWritesInsideABind) {
  // The guest is served a read-only view of the shared directory (docs/security.md): the names
  // the host creates there cannot be planted or replaced by a hostile guest.
  TempDir bundle;
  bundle.Write("rootfs/marker", "from the bundle\n");
  ASSERT_OK_AND_ASSIGN(RunningVm vm, StartVm(Spec()));
  ASSERT_OK_AND_ASSIGN(GuestShell shell, GuestShell::Connect(vm.agent_socket(), Boot()));
  ASSERT_OK_AND_ASSIGN(GuestResult planted,
                       shell.Run("ln -s /etc /run/shared/c1.mount0 || mkdir /run/shared/c2 || "
                                 "touch /run/shared/f || echo refused",
                                 Boot()));
  EXPECT_THAT(planted.output, HasSubstr("Read-only file system"));
  EXPECT_THAT(planted.output, HasSubstr("refused"));
  EXPECT_TRUE(std::filesystem::is_empty(vm.shared_dir)) << "nothing reached the host";
  const std::string target = vm.shared_dir + "/c1";
  ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
  ASSERT_EQ(::mount((bundle.path() + "/rootfs").c_str(), target.c_str(), nullptr, MS_BIND, nullptr),
            0)
      << std::strerror(errno);
  ASSERT_OK_AND_ASSIGN(GuestResult wrote,
                       shell.Run("echo from the guest > /run/shared/c1/new && echo ok", Boot()));
  EXPECT_EQ(wrote.output, "ok");
  EXPECT_EQ(ReadFile(bundle.path() + "/rootfs/new").value_or(""), "from the guest\n");
  ASSERT_THAT(StopVm(vm), IsOk());
  ExpectNothingLeft(vm);
}

TEST_F(VmTest, BootsFromTheNvdimmImage) {
  VmSpec spec = Spec();
  spec.config.initrd = "";
  spec.config.image = kGuest + "/rootfs.img";
  spec.config.shared_fs = "none";
  ASSERT_OK_AND_ASSIGN(RunningVm vm, StartVm(spec));
  EXPECT_FALSE(vm.virtiofsd.has_value());
  ASSERT_OK_AND_ASSIGN(GuestShell shell, GuestShell::Connect(vm.agent_socket(), Boot()));
  ASSERT_OK_AND_ASSIGN(GuestResult r, shell.Run("grep ' / ' /proc/mounts", Boot()));
  EXPECT_THAT(r.output, HasSubstr("/dev/pmem0 / ext4 ro"));
  ASSERT_THAT(StopVm(vm), IsOk());
  ExpectNothingLeft(vm);
}

TEST_F(VmTest, BridgesAndRootPortsAreVisibleInTheGuest) {
  VmSpec spec = Spec();
  spec.config.default_bridges = 2;
  spec.config.pcie_root_port = 3;
  spec.config.shared_fs = "none";
  ASSERT_OK_AND_ASSIGN(RunningVm vm, StartVm(spec));
  ASSERT_OK_AND_ASSIGN(GuestShell shell, GuestShell::Connect(vm.agent_socket(), Boot()));
  // QEMU's pci-bridge is 1b36:0001, its pcie-root-port 1b36:000c.
  ASSERT_OK_AND_ASSIGN(
      GuestResult r, shell.Run("cd /sys/bus/pci/devices && for d in *; do echo $d $(cat $d/vendor) "
                               "$(cat $d/device); done",
                               Boot()));
  int bridges = 0, ports = 0;
  for (absl::string_view line : absl::StrSplit(r.output, '\n')) {
    bridges += absl::StrContains(line, "0x1b36 0x0001");
    ports += absl::StrContains(line, "0x1b36 0x000c");
  }
  EXPECT_EQ(bridges, 2) << r.output;
  EXPECT_EQ(ports, 3) << r.output;
  EXPECT_THAT(r.output, HasSubstr("0000:00:02.0 0x1b36 0x0001")) << "first bridge at slot 2";
  ASSERT_THAT(StopVm(vm), IsOk());
  ExpectNothingLeft(vm);
}

TEST_F(VmTest, WhenVirtiofsdDiesTheSandboxIsStopped) {
  ASSERT_OK_AND_ASSIGN(RunningVm vm, StartVm(Spec()));
  ASSERT_TRUE(vm.virtiofsd && vm.watcher);
  EXPECT_TRUE(IsAlive(*vm.watcher));
  ::kill(vm.virtiofsd->pid, SIGKILL);
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while ((IsAlive(vm.qemu) || IsAlive(*vm.watcher)) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_FALSE(IsAlive(vm.qemu)) << "QEMU kept running without its virtiofsd";
  EXPECT_FALSE(IsAlive(*vm.watcher));
  ASSERT_THAT(StopVm(vm), IsOk());
  ExpectNothingLeft(vm);
}

TEST_F(VmTest, ALaterInvocationStopsTheVmFromItsRecord) {
  persist::Store store(dir_.path() + "/state");
  {
    ASSERT_OK_AND_ASSIGN(RunningVm vm, StartVm(Spec()));
    ASSERT_THAT(SaveVm(store, "sandboxes/vm-test/vm.json", vm), IsOk());
  }  // the starting invocation is gone; only the record remains
  ASSERT_OK_AND_ASSIGN(RunningVm loaded, LoadVm(store, "sandboxes/vm-test/vm.json"));
  EXPECT_TRUE(IsAlive(loaded.qemu));
  ASSERT_THAT(StopVm(loaded), IsOk());
  ExpectNothingLeft(loaded);
}

TEST_F(VmTest, StopOfAVanishedVmSucceedsAndCleansUp) {
  VmSpec spec = Spec();
  spec.config.shared_fs = "none";
  ASSERT_OK_AND_ASSIGN(RunningVm vm, StartVm(spec));
  ::kill(vm.qemu.pid, SIGKILL);
  ASSERT_THAT(StopVm(vm), IsOk());
  ExpectNothingLeft(vm);
}

TEST_F(VmTest, AStartedSandboxCannotStartTwice) {
  VmSpec spec = Spec();
  spec.config.shared_fs = "none";
  ASSERT_OK_AND_ASSIGN(RunningVm vm, StartVm(spec));
  EXPECT_THAT(StartVm(spec), StatusIs(absl::StatusCode::kFailedPrecondition,
                                      HasSubstr("already exists (the VM is running")));
  EXPECT_TRUE(IsAlive(vm.qemu)) << "the failed second start must not touch the first VM";
  ASSERT_THAT(StopVm(vm), IsOk());
  ExpectNothingLeft(vm);
}

TEST(StopVm, NeverSignalsAProcessThatIsNotTheRecordedOne) {
  ASSERT_OK_AND_ASSIGN(Child sleeper, Spawn({.argv = {"/bin/sleep", "30"}}));
  ASSERT_OK_AND_ASSIGN(ProcessIdentity id, ReadProcessIdentity(sleeper.pid()));
  RunningVm vm;
  vm.qemu = id;
  vm.qemu.start_time += 1;  // the recorded QEMU had this pid once; `sleep` has it now
  ASSERT_THAT(StopVm(vm, absl::Milliseconds(100)), IsOk());
  EXPECT_TRUE(IsAlive(id)) << "StopVm signalled an unrelated process";
}

// Bad input: each failure names its cause and leaves nothing behind.
class VmBadInputTest : public VmTest {
 protected:
  void ExpectFailure(const VmSpec& spec, absl::StatusCode code, const std::string& text) {
    EXPECT_THAT(StartVm(spec), StatusIs(code, HasSubstr(text)));
    std::error_code ec;
    EXPECT_TRUE(!std::filesystem::exists(spec.socket_base) ||
                std::filesystem::is_empty(spec.socket_base, ec))
        << "a failed start left its run directory";
  }
  std::string Script(const std::string& body) {
    std::string p = dir_.Write("fake-" + std::to_string(++n_), "#!/bin/sh\n" + body + "\n");
    ::chmod(p.c_str(), 0755);
    return p;
  }
  int n_ = 0;
};

TEST_F(VmBadInputTest, QemuBinaryMissing) {
  VmSpec spec = Spec();
  spec.config.path = "/nonexistent/qemu-system-x86_64";
  ExpectFailure(spec, absl::StatusCode::kNotFound,
                "hypervisor.qemu.path /nonexistent/qemu-system-x86_64: No such file");
}

TEST_F(VmBadInputTest, KernelMissing) {
  VmSpec spec = Spec();
  spec.config.kernel = "/nonexistent/vmlinuz";
  ExpectFailure(spec, absl::StatusCode::kNotFound,
                "hypervisor.qemu.kernel /nonexistent/vmlinuz: No such file");
}

TEST_F(VmBadInputTest, QemuExitsAtStartWithItsOwnText) {
  VmSpec spec = Spec();
  spec.config.machine_accelerators = "no-such-option=on";
  ExpectFailure(spec, absl::StatusCode::kFailedPrecondition,
                "QEMU exited at start with status 1: qemu-system-x86_64: Property "
                "'pc-q35-7.2-machine.no-such-option' not found");
}

TEST_F(VmBadInputTest, VirtiofsdMissing) {
  VmSpec spec = Spec();
  spec.config.virtio_fs_daemon = "/nonexistent/virtiofsd";
  ExpectFailure(spec, absl::StatusCode::kNotFound,
                "hypervisor.qemu.virtio_fs_daemon /nonexistent/virtiofsd: No such file");
}

TEST_F(VmBadInputTest, VirtiofsdExitsAtStart) {
  VmSpec spec = Spec();
  spec.config.virtio_fs_extra_args = {"--no-such-flag"};
  ExpectFailure(spec, absl::StatusCode::kFailedPrecondition, "virtiofsd exited at start: ");
}

TEST_F(VmBadInputTest, SocketPathTooLong) {
  VmSpec spec = Spec();
  spec.socket_base = dir_.path() + "/" + std::string(90, 'd');
  ExpectFailure(spec, absl::StatusCode::kInvalidArgument,
                "over the 107 a unix socket path can hold");
}

TEST_F(VmBadInputTest, GreetingNeverComes) {
  VmSpec spec = Spec();
  spec.config.shared_fs = "none";
  // Holds the monitor socket but never speaks: the start times out and the process is killed.
  std::string pidfile = dir_.path() + "/fake.pid";
  spec.config.path = Script("echo $$ > " + pidfile + "; exec sleep 30");
  spec.start_timeout = absl::Milliseconds(500);
  ExpectFailure(spec, absl::StatusCode::kDeadlineExceeded,
                "QEMU did not start: no QMP greeting on");
  std::ifstream in(pidfile);
  pid_t pid = 0;
  in >> pid;
  ASSERT_GT(pid, 0);
  EXPECT_EQ(::kill(pid, 0), -1) << "the silent QEMU was left running";
}

}  // namespace
}  // namespace runvm::qemu
