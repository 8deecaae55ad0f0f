// Hotplug into real sandbox VMs under TCG, verified from inside the guest: a disk at its PCI
// path with its size, a NIC with its MAC, more vCPUs and memory; unplug and the bridge limits.
#include "hypervisor/qemu/hotplug.h"

#include <pwd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/unix_socket.h"
#include "gtest/gtest.h"
#include "hypervisor/qmp/client.h"
#include "proto/io_frame.h"
#include "proto/oci_spec.h"
#include "tests/testing/bundle.h"
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
using Json = nlohmann::json;

const std::string kGuest = RUNVM_GUEST_DIR;
constexpr int64_t kMiB = 1 << 20;

absl::Time Soon() { return absl::Now() + absl::Seconds(60); }  // TCG on a loaded 2-core host

class HotplugVmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access((kGuest + "/vmlinuz").c_str(), R_OK), 0)
        << "the guest is missing: run scripts/setup.sh (guest/build.sh)";
  }
  void TearDown() override {
    hotplug_.reset();
    qmp_.reset();
    shell_.reset();
    if (vm_) {
      EXPECT_THAT(StopVm(*vm_), IsOk());
    }
    if (!netns_.empty()) std::system(("ip netns delete " + netns_ + " 2>/dev/null").c_str());
  }

  void Boot(int bridges = 1) {
    config::Config c;
    c.hypervisor.kernel = kGuest + "/vmlinuz";
    c.hypervisor.initrd = kGuest + "/initrd.img";
    c.hypervisor.default_memory = 512;
    c.hypervisor.default_bridges = bridges;
    c.ApplyClamps({.cpus = 2});
    absl::StatusOr<RunningVm> vm = StartVm({.config = c.hypervisor,
                                            .sandbox_id = "hotplug-test",
                                            .accelerator = "tcg",
                                            .host_memory_mib = 4096,
                                            .socket_base = dir_.path() + "/vm",
                                            .start_timeout = absl::Seconds(20)});
    ASSERT_THAT(vm, IsOk());
    vm_ = std::move(*vm);
    absl::StatusOr<GuestShell> shell = GuestShell::Connect(vm_->agent_socket(), Soon());
    ASSERT_THAT(shell, IsOk());
    shell_ = std::move(*shell);
    auto qmp = qmp::Client::Connect(vm_->qmp_socket(), Soon());
    ASSERT_THAT(qmp, IsOk());
    qmp_ = std::move(*qmp);
    hotplug_.emplace(*qmp_, *vm_, HotplugOptions{.unplug_timeout = absl::Seconds(30)});
  }

  std::string Guest(const std::string& command) {
    absl::StatusOr<GuestResult> r = shell_->Run(command, Soon());
    EXPECT_THAT(r, IsOk()) << command;
    return r.ok() ? r->output : "";
  }
  // Runs `command` in the guest until its output satisfies `done` (the guest notices hotplug
  // asynchronously); returns the last output.
  template <typename Done>
  std::string GuestUntil(const std::string& command, Done done) {
    std::string out;
    for (absl::Time end = Soon(); absl::Now() < end; absl::SleepFor(absl::Milliseconds(100))) {
      out = Guest(command);
      if (done(out)) break;
    }
    return out;
  }
  int64_t MemTotalKib() {
    std::string line = Guest("awk '/^MemTotal/{print $2}' /proc/meminfo");
    int64_t kib = 0;
    EXPECT_TRUE(absl::SimpleAtoi(line, &kib)) << line;
    return kib;
  }
  std::string Disk(const std::string& name, int64_t size) {
    std::string path = dir_.Write(name, "");
    EXPECT_EQ(::truncate(path.c_str(), size), 0);
    return path;
  }
  // The guest's view of the PCI path "BB/DD": the sectors of the disk behind it, or "".
  std::string SectorsAt(const std::string& pci_path) {
    const std::string bridge = pci_path.substr(0, 2), slot = pci_path.substr(3, 2);
    return absl::StrCat("cat /sys/bus/pci/devices/0000:00:", bridge, ".0/0000:*:", slot,
                        ".0/virtio*/block/*/size 2>/dev/null");
  }

  TempDir dir_;
  std::optional<RunningVm> vm_;
  std::optional<GuestShell> shell_;
  std::unique_ptr<qmp::Client> qmp_;
  std::optional<Hotplug> hotplug_;
  std::string netns_;
};

TEST_F(HotplugVmTest, DiskAppearsAtItsPciPathWithItsSizeAndGoesOnUnplug) {
  Boot();
  std::string disk = Disk("data.img", 64 * kMiB);
  ASSERT_OK_AND_ASSIGN(PluggedDevice d, hotplug_->AddDisk({.path = disk, .driver = "virtio-blk"}));
  EXPECT_EQ(d.guest_address, "02/01");
  EXPECT_EQ(GuestUntil(SectorsAt(d.guest_address), [](const std::string& o) { return !o.empty(); }),
            "131072");  // 64 MiB in 512-byte sectors
  // Remove returns once QEMU reported DEVICE_DELETED.
  ASSERT_THAT(hotplug_->Remove(d.id), IsOk());
  EXPECT_EQ(vm_->hotplug.Find(d.id), nullptr);
  EXPECT_EQ(GuestUntil(SectorsAt(d.guest_address), [](const std::string& o) { return o.empty(); }),
            "");
  ASSERT_OK_AND_ASSIGN(Json blocks, qmp_->Execute("query-named-block-nodes", nullptr, Soon()));
  for (const Json& b : blocks) EXPECT_NE(b.value("node-name", ""), d.node_name);
}

TEST_F(HotplugVmTest, SerialPortCarriesBytesBothWaysAndGoesOnUnplug) {
  Boot();
  ASSERT_OK_AND_ASSIGN(PluggedDevice port, hotplug_->AddSerialPort("io-test"));
  // The guest finds it by name (the name arrives with a later uevent).
  const std::string find =
      "for p in /sys/class/virtio-ports/*; do [ \"$(cat $p/name)\" = io-test ] && "
      "echo /dev/${p##*/}; done";
  std::string dev;
  for (int i = 0; i < 100 && dev.empty(); ++i) dev = Guest(find);
  ASSERT_FALSE(dev.empty());
  ASSERT_OK_AND_ASSIGN(Fd host, ConnectUnix(port.source));
  // Guest to host: the write waits for the host, which is connected.
  Guest("echo from-guest > " + dev);
  std::string got;
  char buf[64];
  while (got.find('\n') == std::string::npos) {
    ssize_t n = ::read(host.get(), buf, sizeof buf);
    ASSERT_GT(n, 0);
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(got, "from-guest\n");
  // Host to guest.
  ASSERT_EQ(::write(host.get(), "from-host\n", 10), 10);
  EXPECT_EQ(Guest("head -n 1 " + dev), "from-host");
  host.reset();
  ASSERT_THAT(hotplug_->Remove(port.id), IsOk());
  EXPECT_EQ(Guest(find), "");
  EXPECT_NE(::access(port.source.c_str(), F_OK), 0) << "QEMU removed its socket";
}

TEST_F(HotplugVmTest, AContainerRunsInTheGuestWithItsStdioOnAHotpluggedPort) {
  Boot();
  // A busybox rootfs, bound into the share the guest sees over virtio-fs.
  testing::Bundle bundle = testing::MakeBusyboxBundle(dir_.path() + "/bundle");
  const std::string rootfs = bundle.rootfs;
  const std::string target = vm_->shared_dir + "/c1";
  ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
  ASSERT_EQ(::mount(rootfs.c_str(), target.c_str(), nullptr, MS_BIND, nullptr), 0);
  ASSERT_OK_AND_ASSIGN(PluggedDevice port, hotplug_->AddSerialPort("io-c1"));
  ASSERT_OK_AND_ASSIGN(Fd host, ConnectUnix(port.source));

  oci::Spec spec = bundle.spec;
  spec.process.args = {"sh", "-c",
                       "uname -r; echo to-stderr >&2; read line; echo got:$line; exit 3"};
  AgentClient& agent = shell_->agent();
  ASSERT_OK_AND_ASSIGN(agent_proto::Message created,
                       agent.Call({.type = agent_proto::kCreateContainer,
                                   .fields = agent_proto::ToFields(agent_proto::CreateContainer{
                                       .id = "c1",
                                       .rootfs = "/run/shared/c1",
                                       .spec_json = oci::SpecToJson(spec),
                                       .stdio_port = "io-c1"})},
                                  Soon()));
  ASSERT_THAT(agent.Call({.type = agent_proto::kStartContainer,
                          .fields = agent_proto::ToFields(agent_proto::ContainerRef{"c1"})},
                         Soon()),
              IsOk());
  const std::string input = io_frame::Encode(io_frame::kStdin, "piped\n");
  ASSERT_EQ(::write(host.get(), input.data(), input.size()), static_cast<ssize_t>(input.size()));
  io_frame::Reader reader;
  std::string out, err;
  int status = -1;
  while (status < 0) {
    char buf[4096];
    ssize_t n = ::read(host.get(), buf, sizeof buf);
    ASSERT_GT(n, 0) << "the port closed before the exit frame";
    reader.Feed({buf, static_cast<size_t>(n)});
    for (;;) {
      absl::StatusOr<std::optional<io_frame::Frame>> f = reader.Next();
      ASSERT_THAT(f, IsOk());
      if (!f->has_value()) break;
      if ((*f)->kind == io_frame::kStdout) out += (*f)->data;
      if ((*f)->kind == io_frame::kStderr) err += (*f)->data;
      if ((*f)->kind == io_frame::kExit) status = *io_frame::ExitStatusOf(**f);
    }
  }
  EXPECT_EQ(out, agent.hello().kernel + "\ngot:piped\n") << "uname -r shows the guest's kernel";
  EXPECT_EQ(err, "to-stderr\n");
  EXPECT_EQ(status, 3);
  EXPECT_THAT(agent.Call({.type = agent_proto::kDestroy,
                          .fields = agent_proto::ToFields(agent_proto::ContainerRef{"c1"})},
                         Soon()),
              IsOk());
  host.reset();
  EXPECT_THAT(hotplug_->Remove(port.id), IsOk());
}

TEST_F(HotplugVmTest, NicAppearsWithItsMacAndGoesOnUnplug) {
  netns_ = absl::StrCat("runvm-test-", ::getpid());
  ASSERT_EQ(std::system(("ip netns add " + netns_).c_str()), 0);
  Boot();
  const std::string mac = "02:00:ca:fe:00:2a";
  ASSERT_OK_AND_ASSIGN(
      PluggedDevice d,
      hotplug_->AddNic({.tap_name = "tap0_runvm", .netns = "/run/netns/" + netns_, .mac = mac}));
  EXPECT_THAT(GuestUntil("cat /sys/class/net/*/address",
                         [&](const std::string& o) { return o.find(mac) != o.npos; }),
              HasSubstr(mac));
  EXPECT_EQ(
      std::system(("ip netns exec " + netns_ + " ip link show tap0_runvm >/dev/null").c_str()), 0);
  ASSERT_THAT(hotplug_->Remove(d.id), IsOk());
  EXPECT_THAT(GuestUntil("cat /sys/class/net/*/address",
                         [&](const std::string& o) { return o.find(mac) == o.npos; }),
              ::testing::Not(HasSubstr(mac)));
  // QEMU closed the queues with the netdev: the tap is gone with them.
  EXPECT_NE(
      std::system(("ip netns exec " + netns_ + " ip link show tap0_runvm 2>/dev/null").c_str()), 0);
}

TEST_F(HotplugVmTest, QemuRunsAsTheHypervisorUserWithoutCapabilitiesAndStillPlugs) {
  // docs/security.md: QEMU starts as root, drops to hypervisor_user (-runas) and every
  // capability; what it opens later (a disk only root may open, a tap, a stdio port's socket in
  // the root-only run directory) runvm opens and passes by fd.
  netns_ = absl::StrCat("runvm-test-", ::getpid());
  ASSERT_EQ(std::system(("ip netns add " + netns_).c_str()), 0);
  Boot();
  ASSERT_EQ(vm_->config.hypervisor_user, "runvm-qemu") << "the default";
  const passwd* pw = ::getpwnam("runvm-qemu");
  ASSERT_NE(pw, nullptr) << "scripts/setup.sh makes the user";
  ASSERT_NE(pw->pw_uid, 0u);
  ASSERT_OK_AND_ASSIGN(std::string status,
                       ReadFile(absl::StrCat("/proc/", vm_->qemu.pid, "/status")));
  const std::string uid = absl::StrCat(pw->pw_uid);
  EXPECT_THAT(status,
              HasSubstr(absl::StrCat("Uid:\t", uid, "\t", uid, "\t", uid, "\t", uid, "\n")));
  EXPECT_THAT(status, HasSubstr("CapPrm:\t0000000000000000\n"));
  EXPECT_THAT(status, HasSubstr("CapEff:\t0000000000000000\n"));

  const std::string disk = Disk("private.img", 16 * kMiB);
  ASSERT_EQ(::chmod(disk.c_str(), 0600), 0);
  ASSERT_OK_AND_ASSIGN(PluggedDevice blk,
                       hotplug_->AddDisk({.path = disk, .driver = "virtio-blk"}));
  EXPECT_EQ(
      GuestUntil(SectorsAt(blk.guest_address), [](const std::string& o) { return !o.empty(); }),
      "32768");
  const std::string mac = "02:00:ca:fe:00:2b";
  ASSERT_OK_AND_ASSIGN(
      PluggedDevice nic,
      hotplug_->AddNic({.tap_name = "tap0_runvm", .netns = "/run/netns/" + netns_, .mac = mac}));
  EXPECT_THAT(GuestUntil("cat /sys/class/net/*/address",
                         [&](const std::string& o) { return o.find(mac) != o.npos; }),
              HasSubstr(mac));
  ASSERT_OK_AND_ASSIGN(PluggedDevice port, hotplug_->AddSerialPort("io-confined"));
  ASSERT_OK_AND_ASSIGN(Fd conn, ConnectUnix(port.source, Soon()));
  EXPECT_TRUE(conn.valid());
  conn.reset();
  for (const PluggedDevice& d : {blk, nic, port}) EXPECT_THAT(hotplug_->Remove(d.id), IsOk());
  // The disk's fd set went with it, and so did the port's socket.
  ASSERT_OK_AND_ASSIGN(Json fdsets, qmp_->Execute("query-fdsets", nullptr, Soon()));
  EXPECT_TRUE(fdsets.empty()) << fdsets.dump();
  EXPECT_FALSE(std::filesystem::exists(port.source));
  // A device QEMU would have to open itself is refused, naming the way out.
  EXPECT_THAT(hotplug_->AddDisk({.path = disk, .driver = "nvdimm"}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("hypervisor_user = \"\"")));
}

TEST_F(HotplugVmTest, VcpusAndMemoryComeOnlineInTheGuest) {
  Boot();
  EXPECT_EQ(Guest("cat /sys/devices/system/cpu/online"), "0");
  ASSERT_OK_AND_ASSIGN(VcpuResult cpus, hotplug_->AddVcpus(1));
  EXPECT_EQ(cpus.online, 2);
  EXPECT_EQ(GuestUntil("cat /sys/devices/system/cpu/online",
                       [](const std::string& o) { return o == "0-1"; }),
            "0-1");

  const int64_t before = MemTotalKib();
  ASSERT_OK_AND_ASSIGN(MemoryResult mem, hotplug_->AddMemory(256));
  EXPECT_EQ(mem.added_mib, 256);
  int64_t after = before;
  for (absl::Time end = Soon(); absl::Now() < end && after - before < 256 * 1024;
       absl::SleepFor(absl::Milliseconds(100))) {
    after = MemTotalKib();
  }
  EXPECT_EQ(after - before, 256 * 1024) << "MemTotal " << before << " -> " << after << " KiB";

  // Under TCG a vCPU is never unplugged: QEMU 7.2 segfaults when one is plugged again after an
  // unplug (measured; the device_add after RemoveVcpus closed the monitor).
  EXPECT_THAT(hotplug_->RemoveVcpus(1),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("under TCG")));
  EXPECT_EQ(Guest("cat /sys/devices/system/cpu/online"), "0-1");
}

TEST_F(HotplugVmTest, ThirtyOneDisksNeedASecondBridge) {
  std::string disk = Disk("data.img", 4 * kMiB);
  for (int bridges : {1, 2}) {
    SCOPED_TRACE(absl::StrCat(bridges, " bridge(s)"));
    Boot(bridges);
    for (int i = 0; i < 30; ++i) {
      ASSERT_THAT(hotplug_->AddDisk({.path = disk, .read_only = true, .driver = "virtio-blk"}),
                  IsOk());
    }
    absl::StatusOr<PluggedDevice> last =
        hotplug_->AddDisk({.path = disk, .read_only = true, .driver = "virtio-blk"});
    if (bridges == 1) {
      EXPECT_THAT(last, StatusIs(absl::StatusCode::kResourceExhausted,
                                 HasSubstr("no free slot on the 1 PCI bridge(s)")));
      EXPECT_EQ(vm_->hotplug.devices.size(), 30u);
    } else {
      ASSERT_THAT(last, IsOk());
      EXPECT_EQ(last->guest_address, "03/01");
      EXPECT_EQ(GuestUntil(SectorsAt("03/01"), [](const std::string& o) { return !o.empty(); }),
                "8192");
      EXPECT_EQ(Guest("ls /sys/block | grep -c vd"), "31");
    }
    TearDown();
    vm_.reset();
  }
}

}  // namespace
}  // namespace runvm::qemu
