// Hotplug against a strict scripted QMP peer: the commands, their arguments and order for every
// kind's plug and unplug, and the rollback after a failure at each step.
#include "hypervisor/qemu/hotplug.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "hypervisor/qemu/command_line.h"
#include "hypervisor/qmp/client.h"
#include "tests/testing/fake_qmp_peer.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace runvm::qemu {
namespace {

using ::runvm::testing::FakeQmpPeer;
using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::runvm::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Json = nlohmann::json;

constexpr int64_t kMiB = 1 << 20;

class HotplugTest : public ::testing::Test {
 protected:
  HotplugTest() {
    vm_.sandbox_id = "sb1";
    vm_.config.default_bridges = 1;
    vm_.config.default_vcpus = 1;
    vm_.config.default_maxvcpus = 4;
    vm_.config.default_memory = 2048;
    vm_.config.memory_slots = 10;
    vm_.config.block_device_driver = "virtio-blk";
    vm_.max_memory_mib = 4096;
  }
  void TearDown() override {
    hotplug_.reset();
    client_.reset();
    EXPECT_THAT(peer_.Finish(), IsEmpty());
  }

  // Starts the scripted peer (its script begun with Negotiate()) and the Hotplug on it.
  Hotplug& Start(HotplugOptions options = {}) {
    peer_.Start();
    auto c = qmp::Client::Adopt(peer_.TakeClientEnd(), absl::Now() + absl::Seconds(5));
    EXPECT_THAT(c, IsOk());
    client_ = std::move(*c);
    hotplug_.emplace(*client_, vm_, options);
    return *hotplug_;
  }

  std::string Disk(const std::string& name, int64_t size) {
    std::string path = dir_.Write(name, "");
    EXPECT_EQ(::truncate(path.c_str(), size), 0);
    return path;
  }

  // A device recorded as plugged earlier.
  void Record(PluggedDevice d) { vm_.hotplug.devices.push_back(std::move(d)); }

  std::vector<std::string> Ids() const {
    std::vector<std::string> ids;
    for (const PluggedDevice& d : vm_.hotplug.devices) ids.push_back(d.id);
    return ids;
  }

  FakeQmpPeer peer_;
  RunningVm vm_;
  TempDir dir_;
  std::unique_ptr<qmp::Client> client_;
  std::optional<Hotplug> hotplug_;
};

// ---- block ----

TEST_F(HotplugTest, VirtioBlkIsABlockNodeThenADeviceOnTheFirstBridgeSlot) {
  std::string disk = Disk("d.img", 8 * kMiB);
  peer_.Negotiate()
      .ExpectCommand("blockdev-add", {{"driver", "raw"},
                                      {"node-name", "drive-blk0"},
                                      {"read-only", true},
                                      {"file", {{"driver", "file"}, {"filename", disk}}}})
      .Reply()
      .ExpectCommand("device_add", {{"driver", "virtio-blk-pci"},
                                    {"id", "blk0"},
                                    {"drive", "drive-blk0"},
                                    {"bus", "pci-bridge-0"},
                                    {"addr", "01"}})
      .Reply();
  ASSERT_OK_AND_ASSIGN(PluggedDevice d, Start().AddDisk({.path = disk, .read_only = true}));
  EXPECT_EQ(d.guest_address, "02/01");
  EXPECT_EQ(d.size_bytes, 8 * kMiB);
  EXPECT_THAT(Ids(), ElementsAre("blk0"));
  EXPECT_FALSE(peer_.commands().at(1)["arguments"].contains("cache"));
}

TEST_F(HotplugTest, NextDiskTakesTheNextFreeSlotAndAFreshId) {
  vm_.hotplug.next_index = 7;
  Record({.id = "blk3", .kind = kKindVirtioBlk, .bus = "pci-bridge-0", .slot = 1});
  std::string disk = Disk("d.img", kMiB);
  peer_.Negotiate()
      .ExpectCommand("blockdev-add", {{"node-name", "drive-blk7"}})
      .Reply()
      .ExpectCommand("device_add", {{"id", "blk7"}, {"addr", "02"}})
      .Reply();
  ASSERT_OK_AND_ASSIGN(PluggedDevice d, Start().AddDisk({.path = disk}));
  EXPECT_EQ(d.guest_address, "02/02");
}

TEST_F(HotplugTest, CacheOptionsFollowTheConfiguration) {
  vm_.config.block_device_cache_set = true;
  vm_.config.block_device_cache_direct = true;
  std::string disk = Disk("d.img", kMiB);
  peer_.Negotiate()
      .ExpectCommand("blockdev-add", {{"cache", {{"direct", true}, {"no-flush", false}}}})
      .Reply()
      .ExpectCommand("device_add")
      .Reply();
  EXPECT_THAT(Start().AddDisk({.path = disk}), IsOk());
}

TEST_F(HotplugTest, ScsiDiskGetsTargetAndLunFromItsIndex) {
  vm_.config.block_device_driver = "virtio-scsi";
  for (int i = 0; i < 257; ++i) {
    Record({.id = absl::StrCat("sd", i), .kind = kKindScsi, .bus = "scsi0.0", .slot = i});
  }
  std::string disk = Disk("d.img", kMiB);
  peer_.Negotiate()
      .ExpectCommand("blockdev-add")
      .Reply()
      .ExpectCommand("device_add", {{"driver", "scsi-hd"},
                                    {"bus", "scsi0.0"},
                                    {"scsi-id", 1},
                                    {"lun", 1},
                                    {"drive", "drive-sd257"}})
      .Reply();
  ASSERT_OK_AND_ASSIGN(PluggedDevice d, Start().AddDisk({.path = disk}));
  EXPECT_EQ(d.guest_address, "1:1");
  EXPECT_EQ(d.slot, 257);
}

TEST_F(HotplugTest, ScsiWithoutAController) {
  std::string disk = Disk("d.img", kMiB);
  peer_.Negotiate();
  EXPECT_THAT(Start().AddDisk({.path = disk, .driver = "virtio-scsi"}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("no virtio-scsi controller (block_device_driver is virtio-blk)")));
}

TEST_F(HotplugTest, DeviceAddFailureDeletesTheBlockNode) {
  std::string disk = Disk("d.img", kMiB);
  peer_.Negotiate()
      .ExpectCommand("blockdev-add")
      .Reply()
      .ExpectCommand("device_add")
      .ReplyError("GenericError", "Bus 'pci-bridge-0' does not support hotplugging")
      .ExpectCommand("blockdev-del", {{"node-name", "drive-blk0"}})
      .Reply();
  EXPECT_THAT(Start().AddDisk({.path = disk}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("blk0: device_add: QMP device_add: GenericError: Bus "
                                 "'pci-bridge-0' does not support hotplugging")));
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(HotplugTest, BlockdevAddFailureSendsNothingElse) {
  std::string disk = Disk("d.img", kMiB);
  peer_.Negotiate()
      .ExpectCommand("blockdev-add")
      .ReplyError("GenericError", "Could not open 'x': Permission denied");
  EXPECT_THAT(Start().AddDisk({.path = disk}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("blk0: blockdev-add")));
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(HotplugTest, QemuDyingBetweenTwoStepsIsReportedWithWhatItMayHold) {
  std::string disk = Disk("d.img", kMiB);
  peer_.Negotiate().ExpectCommand("blockdev-add").Reply().Close();
  absl::StatusOr<PluggedDevice> d = Start().AddDisk({.path = disk});
  EXPECT_THAT(d, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("QEMU monitor closed")));
  EXPECT_THAT(d.status().message(), HasSubstr("not rolled back, QEMU may still hold: block node "
                                              "drive-blk0"));
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(HotplugTest, ThirtyOneDisksOnOneBridge) {
  for (int s = 1; s <= 30; ++s) {
    Record(
        {.id = absl::StrCat("blk", s), .kind = kKindVirtioBlk, .bus = "pci-bridge-0", .slot = s});
  }
  std::string disk = Disk("d.img", kMiB);
  peer_.Negotiate();
  EXPECT_THAT(Start().AddDisk({.path = disk}),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("disk " + disk +
                                 ": no free slot on the 1 PCI bridge(s) (30 "
                                 "slots each)")));
}

TEST_F(HotplugTest, TheThirtyFirstDiskLandsOnTheSecondBridge) {
  vm_.config.default_bridges = 2;
  for (int s = 1; s <= 30; ++s) {
    Record(
        {.id = absl::StrCat("blk", s), .kind = kKindVirtioBlk, .bus = "pci-bridge-0", .slot = s});
  }
  std::string disk = Disk("d.img", kMiB);
  peer_.Negotiate()
      .ExpectCommand("blockdev-add")
      .Reply()
      .ExpectCommand("device_add", {{"bus", "pci-bridge-1"}, {"addr", "01"}})
      .Reply();
  ASSERT_OK_AND_ASSIGN(PluggedDevice d, Start().AddDisk({.path = disk}));
  EXPECT_EQ(d.guest_address, "03/01");
}

TEST_F(HotplugTest, BadDisks) {
  peer_.Negotiate();
  Hotplug& hp = Start();
  EXPECT_THAT(hp.AddDisk({.path = dir_.path() + "/missing.img"}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.img: does not exist")));
  EXPECT_THAT(hp.AddDisk({.path = dir_.path()}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(": is a directory, not a regular file or a block device")));
  EXPECT_THAT(hp.AddDisk({.path = "/dev/null"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("disk /dev/null: is a character device")));
  EXPECT_THAT(hp.AddDisk({.path = "relative.img"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not an absolute path")));
  EXPECT_THAT(hp.AddDisk({.path = Disk("d.img", kMiB), .driver = "floppy"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("driver \"floppy\"")));
  EXPECT_THAT(Ids(), IsEmpty());
}

// ---- NVDIMM and vhost-user-blk ----

TEST_F(HotplugTest, NvdimmIsAFileBackendAndAnNvdimmAfterTheBootImage) {
  vm_.config.image = "/images/rootfs.img";
  std::string disk = Disk("pmem.img", 4 * kMiB);
  peer_.Negotiate()
      .ExpectCommand("query-memory-devices")
      .Reply(Json::array({{{"type", "nvdimm"}, {"data", {{"slot", 0}}}}}))
      .ExpectCommand("object-add", {{"qom-type", "memory-backend-file"},
                                    {"id", "mem-nv0"},
                                    {"mem-path", disk},
                                    {"size", 4 * kMiB},
                                    {"readonly", true}})
      .Reply()
      .ExpectCommand(
          "device_add",
          {{"driver", "nvdimm"}, {"id", "nv0"}, {"memdev", "mem-nv0"}, {"unarmed", true}})
      .Reply();
  ASSERT_OK_AND_ASSIGN(PluggedDevice d,
                       Start().AddDisk({.path = disk, .read_only = true, .driver = "nvdimm"}));
  EXPECT_EQ(d.guest_address, "/dev/pmem1");
}

TEST_F(HotplugTest, NvdimmRollbackDeletesTheBackend) {
  vm_.config.block_device_driver = "nvdimm";
  std::string disk = Disk("pmem.img", 2 * kMiB);
  peer_.Negotiate()
      .ExpectCommand("query-memory-devices")
      .Reply(Json::array())
      .ExpectCommand("object-add")
      .Reply()
      .ExpectCommand("device_add")
      .ReplyError("GenericError", "not enough space")
      .ExpectCommand("object-del", {{"id", "mem-nv0"}})
      .Reply();
  EXPECT_THAT(Start().AddDisk({.path = disk}), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(HotplugTest, NvdimmRefusals) {
  peer_.Negotiate();
  Hotplug& hp = Start();
  std::string disk = Disk("pmem.img", 3 * kMiB);
  EXPECT_THAT(hp.AddDisk({.path = disk, .driver = "nvdimm"}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no NVDIMM support")));
  vm_.config.block_device_driver = "nvdimm";
  EXPECT_THAT(hp.AddDisk({.path = disk}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("3145728 bytes is not a positive multiple of 2 MiB")));
}

TEST_F(HotplugTest, VhostUserBlkNeedsHugepages) {
  peer_.Negotiate();
  EXPECT_THAT(
      Start().AddDisk({.path = "/run/vhost/blk.sock", .driver = "vhost-user-blk"}),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("enable_hugepages is off")));
}

TEST_F(HotplugTest, VhostUserBlkIsAChardevThenADeviceAndRollsBack) {
  vm_.config.enable_hugepages = true;
  std::string sock = dir_.path() + "/blk.sock";
  int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  peer_.Negotiate()
      .ExpectCommand("chardev-add",
                     {{"id", "char-vublk0"},
                      {"backend",
                       {{"type", "socket"},
                        {"data", {{"addr", {{"type", "unix"}, {"data", {{"path", sock}}}}}}}}}})
      .Reply()
      .ExpectCommand(
          "device_add",
          {{"driver", "vhost-user-blk-pci"}, {"chardev", "char-vublk0"}, {"bus", "pci-bridge-0"}})
      .ReplyError("GenericError", "Failed to read msg header")
      .ExpectCommand("chardev-remove", {{"id", "char-vublk0"}})
      .Reply();
  EXPECT_THAT(
      Start().AddDisk({.path = sock, .driver = "vhost-user-blk"}),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("Failed to read msg header")));
  EXPECT_THAT(Ids(), IsEmpty());
  ::close(s);
}

// ---- network ----

std::string UniqueTap() { return absl::StrCat("rvt", ::getpid() % 100000); }

TEST_F(HotplugTest, NicHandsTheTapQueuesToQemuThenAddsNetdevAndDevice) {
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/net/tun";
  vm_.config.default_vcpus = 2;
  const std::string tap = UniqueTap();
  peer_.Negotiate()
      .ExpectCommand("getfd", {{"fdname", "fd-net0-0"}})
      .ExpectFd()
      .Reply()
      .ExpectCommand("getfd", {{"fdname", "fd-net0-1"}})
      .ExpectFd()
      .Reply()
      .ExpectCommand("netdev_add",
                     {{"type", "tap"}, {"id", "netdev-net0"}, {"fds", "fd-net0-0:fd-net0-1"}})
      .Reply()
      .ExpectCommand("device_add", {{"driver", "virtio-net-pci"},
                                    {"id", "net0"},
                                    {"netdev", "netdev-net0"},
                                    {"mac", "02:00:ca:fe:00:01"},
                                    {"bus", "pci-bridge-0"},
                                    {"addr", "01"},
                                    {"mq", true},
                                    {"vectors", 6}})
      .Reply();
  ASSERT_OK_AND_ASSIGN(PluggedDevice d,
                       Start().AddNic({.tap_name = tap, .mac = "02:00:ca:fe:00:01"}));
  EXPECT_EQ(d.netdev, "netdev-net0");
  EXPECT_THAT(d.fd_names, IsEmpty());  // netdev_add took them
  ASSERT_EQ(peer_.received_fds().size(), 2u);
  EXPECT_TRUE(S_ISCHR(peer_.received_fds()[0].st_mode));
}

TEST_F(HotplugTest, NetdevFailureClosesTheNamedFds) {
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/net/tun";
  peer_.Negotiate()
      .ExpectCommand("getfd")
      .ExpectFd()
      .Reply()
      .ExpectCommand("netdev_add")
      .ReplyError("GenericError", "could not configure /dev/net/tun")
      .ExpectCommand("closefd", {{"fdname", "fd-net0-0"}})
      .Reply();
  EXPECT_THAT(Start().AddNic({.tap_name = UniqueTap(), .mac = "02:00:ca:fe:00:01"}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("net0: netdev_add")));
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(HotplugTest, NicDeviceFailureDeletesTheNetdevOnly) {
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/net/tun";
  peer_.Negotiate()
      .ExpectCommand("getfd")
      .ExpectFd()
      .Reply()
      .ExpectCommand("netdev_add")
      .Reply()
      .ExpectCommand("device_add")
      .ReplyError("GenericError", "Duplicate ID")
      .ExpectCommand("netdev_del", {{"id", "netdev-net0"}})
      .Reply();
  EXPECT_THAT(Start().AddNic({.tap_name = UniqueTap(), .mac = "02:00:ca:fe:00:01"}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("Duplicate ID")));
}

TEST_F(HotplugTest, BadMacIsRefusedBeforeAnything) {
  peer_.Negotiate();
  Hotplug& hp = Start();
  EXPECT_THAT(hp.AddNic({.tap_name = "t0", .mac = "02:00:ca:fe:00"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("NIC t0: MAC address \"02:00:ca:fe:00\": not six hex pairs")));
  EXPECT_THAT(hp.AddNic({.tap_name = "t0", .mac = "01:00:5e:00:00:01"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("multicast")));
  EXPECT_THAT(hp.AddNic({.tap_name = "a/b", .mac = "02:00:ca:fe:00:01"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tap name \"a/b\"")));
}

// ---- vCPUs ----

Json HotpluggableCpus(int plugged, int total) {
  Json list = Json::array();
  for (int s = total - 1; s >= 0; --s) {  // QEMU lists the highest id first
    Json e = {{"type", "max-x86_64-cpu"},
              {"vcpus-count", 1},
              {"props", {{"socket-id", s}, {"core-id", 0}, {"thread-id", 0}}}};
    if (s < plugged) e["qom-path"] = absl::StrCat("/machine/unattached/device[", s, "]");
    list.push_back(e);
  }
  return list;
}

TEST_F(HotplugTest, VcpusArePluggedLowestFreeSocketFirst) {
  peer_.Negotiate()
      .ExpectCommand("query-hotpluggable-cpus")
      .Reply(HotpluggableCpus(1, 4))
      .ExpectCommand("device_add", {{"driver", "max-x86_64-cpu"}, {"id", "cpu0"}, {"socket-id", 1}})
      .Reply()
      .ExpectCommand("device_add", {{"id", "cpu1"}, {"socket-id", 2}})
      .Reply();
  ASSERT_OK_AND_ASSIGN(VcpuResult r, Start().AddVcpus(2));
  EXPECT_THAT(r.ids, ElementsAre("cpu0", "cpu1"));
  EXPECT_EQ(r.online, 3);
  EXPECT_EQ(r.warning, "");
  EXPECT_EQ(vm_.hotplug.Find("cpu1")->guest_address, "socket 2 core 0 thread 0");
}

TEST_F(HotplugTest, VcpusAreClampedToMaxvcpusWithAWarning) {
  peer_.Negotiate()
      .ExpectCommand("query-hotpluggable-cpus")
      .Reply(HotpluggableCpus(3, 4))
      .ExpectCommand("device_add", {{"socket-id", 3}})
      .Reply();
  ASSERT_OK_AND_ASSIGN(VcpuResult r, Start().AddVcpus(5));
  EXPECT_THAT(r.ids, ElementsAre("cpu0"));
  EXPECT_EQ(r.warning,
            "vCPUs: asked for 5 more, adding 1: 3 of at most 4 (default_maxvcpus) are online");
}

TEST_F(HotplugTest, MaxvcpusReached) {
  peer_.Negotiate().ExpectCommand("query-hotpluggable-cpus").Reply(HotpluggableCpus(4, 4));
  ASSERT_OK_AND_ASSIGN(VcpuResult r, Start().AddVcpus(1));
  EXPECT_THAT(r.ids, IsEmpty());
  EXPECT_THAT(r.warning, HasSubstr("adding 0: 4 of at most 4"));
}

TEST_F(HotplugTest, APartialVcpuPlugIsReportedPreciselyAndRecorded) {
  peer_.Negotiate()
      .ExpectCommand("query-hotpluggable-cpus")
      .Reply(HotpluggableCpus(1, 4))
      .ExpectCommand("device_add")
      .Reply()
      .ExpectCommand("device_add")
      .ReplyError("GenericError", "CPU hotplug failed");
  EXPECT_THAT(Start().AddVcpus(3),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("vCPUs: plugged 1 of 3 (cpu0); then cpu1: device_add: QMP "
                                 "device_add: GenericError: CPU hotplug failed")));
  EXPECT_THAT(Ids(), ElementsAre("cpu0"));
}

TEST_F(HotplugTest, NoVcpuIsUnpluggedUnderTcgByCountOrById) {
  vm_.accelerator = "tcg";
  Record({.id = "cpu3", .kind = kKindCpu, .slot = 1});
  peer_.Negotiate();
  Hotplug& hp = Start();
  EXPECT_THAT(hp.RemoveVcpus(1), StatusIs(absl::StatusCode::kFailedPrecondition,
                                          HasSubstr("under TCG, QEMU 7.2 crashes")));
  EXPECT_THAT(hp.Remove("cpu3"), StatusIs(absl::StatusCode::kFailedPrecondition,
                                          HasSubstr("under TCG, QEMU 7.2 crashes")));
  EXPECT_THAT(Ids(), ElementsAre("cpu3"));
}

TEST_F(HotplugTest, VcpusAreUnpluggedLastInFirstOut) {
  Record({.id = "cpu0", .kind = kKindCpu, .slot = 1});
  Record({.id = "cpu1", .kind = kKindCpu, .slot = 2});
  peer_.Negotiate()
      .ExpectCommand("device_del", {{"id", "cpu1"}})
      .Reply()
      .Event("DEVICE_DELETED", {{"device", "cpu1"}, {"path", "/machine/peripheral/cpu1"}})
      .ExpectCommand("device_del", {{"id", "cpu0"}})
      .Reply()
      .Event("DEVICE_DELETED", {{"device", "cpu0"}, {"path", "/machine/peripheral/cpu0"}})
      .ExpectCommand("query-hotpluggable-cpus")
      .Reply(HotpluggableCpus(1, 4));
  ASSERT_OK_AND_ASSIGN(VcpuResult r, Start().RemoveVcpus(5));
  EXPECT_THAT(r.ids, ElementsAre("cpu1", "cpu0"));
  EXPECT_EQ(r.online, 1);
  EXPECT_THAT(Ids(), IsEmpty());
  EXPECT_THAT(r.warning, HasSubstr("asked to remove 5, removing 2"));
}

// ---- memory ----

TEST_F(HotplugTest, MemoryIsRoundedUpToTheBlockSizeAndSharedWithVirtiofs) {
  vm_.config.shared_fs = "virtio-fs";
  peer_.Negotiate()
      .ExpectCommand("query-memory-devices")
      .Reply(Json::array({{{"type", "dimm"}, {"data", {{"slot", 0}}}}}))
      .ExpectCommand("object-add", {{"qom-type", "memory-backend-file"},
                                    {"id", "mem-dimm0"},
                                    {"size", 128 * kMiB},
                                    {"mem-path", "/dev/shm"},
                                    {"share", true}})
      .Reply()
      .ExpectCommand("device_add",
                     {{"driver", "pc-dimm"}, {"id", "dimm0"}, {"memdev", "mem-dimm0"}, {"slot", 1}})
      .Reply();
  ASSERT_OK_AND_ASSIGN(MemoryResult r, Start().AddMemory(100));
  EXPECT_EQ(r.added_mib, 128);
  EXPECT_EQ(vm_.hotplug.Find("dimm0")->size_bytes, 128 * kMiB);
}

TEST_F(HotplugTest, MemoryWithoutSharingIsRam) {
  vm_.config.shared_fs = "none";
  peer_.Negotiate()
      .ExpectCommand("query-memory-devices")
      .Reply(Json::array())
      .ExpectCommand("object-add", {{"qom-type", "memory-backend-ram"}, {"size", 256 * kMiB}})
      .Reply()
      .ExpectCommand("device_add", {{"slot", 0}})
      .ReplyError("GenericError", "a used vhost backend has no free memory slots left")
      .ExpectCommand("object-del", {{"id", "mem-dimm0"}})
      .Reply();
  EXPECT_THAT(Start().AddMemory(256),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("dimm0: device_add")));
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(HotplugTest, MemoryBeyondMaxmemNamesTheNumbers) {
  Record({.id = "dimm0", .kind = kKindDimm, .slot = 0, .size_bytes = 1024 * kMiB});
  peer_.Negotiate();
  EXPECT_THAT(Start().AddMemory(1100),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("memory: adding 1152 MiB (1100 rounded up to the 128 MiB block "
                                 "size) to 3072 MiB would exceed maxmem, 4096 MiB")));
}

TEST_F(HotplugTest, MemorySlotsExhausted) {
  vm_.config.memory_slots = 1;
  peer_.Negotiate()
      .ExpectCommand("query-memory-devices")
      .Reply(Json::array({{{"type", "nvdimm"}, {"data", {{"slot", 0}}}}}));
  EXPECT_THAT(Start().AddMemory(128), StatusIs(absl::StatusCode::kResourceExhausted,
                                               HasSubstr("memory: all 1 memory slots are in use")));
}

TEST_F(HotplugTest, VirtioMemIsPluggedOnceThenResized) {
  vm_.config.enable_virtio_mem = true;
  vm_.config.shared_fs = "none";
  vm_.max_memory_mib = 2048 + 1024 + 1024;  // boot + NVDIMM headroom + 1 GiB region
  peer_.Negotiate()
      .ExpectCommand(
          "object-add",
          {{"qom-type", "memory-backend-ram"}, {"id", "mem-virtiomem0"}, {"size", 1024 * kMiB}})
      .Reply()
      .ExpectCommand("device_add", {{"driver", "virtio-mem-pci"},
                                    {"id", "virtiomem0"},
                                    {"memdev", "mem-virtiomem0"},
                                    {"requested-size", 128 * kMiB}})
      .Reply()
      .ExpectCommand("qom-set", {{"path", "/machine/peripheral/virtiomem0"},
                                 {"property", "requested-size"},
                                 {"value", 384 * kMiB}})
      .Reply();
  Hotplug& hp = Start();
  ASSERT_THAT(hp.AddMemory(128), IsOk());
  ASSERT_OK_AND_ASSIGN(MemoryResult r, hp.AddMemory(256));
  EXPECT_EQ(r.device_id, "virtiomem0");
  EXPECT_EQ(vm_.hotplug.Find("virtiomem0")->size_bytes, 384 * kMiB);
  EXPECT_THAT(hp.Remove("virtiomem0"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("resized")));
}

// ---- unplug ----

void RecordDisk(RunningVm& vm) {
  vm.hotplug.next_index = 1;
  vm.hotplug.devices.push_back({.id = "blk0",
                                .kind = kKindVirtioBlk,
                                .bus = "pci-bridge-0",
                                .slot = 1,
                                .node_name = "drive-blk0"});
}

TEST_F(HotplugTest, UnplugWaitsForDeviceDeletedThenDeletesTheBackend) {
  RecordDisk(vm_);
  peer_.Negotiate()
      .ExpectCommand("device_del", {{"id", "blk0"}})
      .Reply()
      .Delay(absl::Milliseconds(20))
      .Event("DEVICE_DELETED", {{"path", "/machine/peripheral/blk0/virtio-backend"}})
      .Event("DEVICE_DELETED", {{"device", "blk0"}, {"path", "/machine/peripheral/blk0"}})
      .ExpectCommand("blockdev-del", {{"node-name", "drive-blk0"}})
      .Reply();
  EXPECT_THAT(Start().Remove("blk0"), IsOk());
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(HotplugTest, ABlockNodeStillInUseAfterTheDeviceWentIsDeletedOnceReleased) {
  // A SCSI disk holds its node until the guest has processed the unplug.
  RecordDisk(vm_);
  peer_.Negotiate()
      .ExpectCommand("device_del")
      .Reply()
      .Event("DEVICE_DELETED", {{"device", "blk0"}})
      .ExpectCommand("blockdev-del")
      .ReplyError("GenericError", "Node drive-blk0 is in use")
      .ExpectCommand("blockdev-del", {{"node-name", "drive-blk0"}})
      .Reply();
  EXPECT_THAT(Start().Remove("blk0"), IsOk());
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(HotplugTest, UnplugOfEachKindTearsDownItsBackend) {
  Record({.id = "net0", .kind = kKindNet, .bus = "pci-bridge-0", .slot = 2, .netdev = "nd0"});
  Record({.id = "dimm0", .kind = kKindDimm, .slot = 0, .object = "mem-dimm0"});
  Record({.id = "vublk0", .kind = kKindVhostUserBlk, .chardev = "char-vublk0"});
  Record({.id = "vfio0", .kind = kKindVfio, .bus = "rp0", .slot = 0});
  peer_.Negotiate();
  for (auto [id, teardown, arg] :
       {std::tuple<const char*, const char*, const char*>{"net0", "netdev_del", "nd0"},
        {"dimm0", "object-del", "mem-dimm0"},
        {"vublk0", "chardev-remove", "char-vublk0"},
        {"vfio0", nullptr, nullptr}}) {
    peer_.ExpectCommand("device_del", {{"id", id}})
        .Reply()
        .Event("DEVICE_DELETED", {{"device", id}});
    if (teardown != nullptr) peer_.ExpectCommand(teardown, {{"id", arg}}).Reply();
  }
  Hotplug& hp = Start();
  for (const char* id : {"net0", "dimm0", "vublk0", "vfio0"}) EXPECT_THAT(hp.Remove(id), IsOk());
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(HotplugTest, UnplugTimeoutLeavesTheDevicePendingThenFinishesIt) {
  RecordDisk(vm_);
  std::string disk = Disk("d.img", kMiB);
  peer_.Negotiate()
      .ExpectCommand("device_del")
      .Reply()
      // At the deadline QEMU still has it.
      .ExpectCommand("qom-list", {{"path", "/machine/peripheral"}})
      .Reply(Json::array({{{"name", "blk0"}, {"type", "child<virtio-blk-pci>"}}}))
      // Later: QEMU no longer has blk0, so its backend goes and its slot is free again.
      .ExpectCommand("qom-list", {{"path", "/machine/peripheral"}})
      .Reply(Json::array({{{"name", "net9"}, {"type", "child<virtio-net-pci>"}}}))
      .ExpectCommand("blockdev-del", {{"node-name", "drive-blk0"}})
      .Reply()
      .ExpectCommand("blockdev-add")
      .Reply()
      .ExpectCommand("device_add", {{"addr", "01"}})
      .Reply();
  Hotplug& hp = Start({.unplug_timeout = absl::Milliseconds(100)});
  EXPECT_THAT(hp.Remove("blk0"),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("blk0: unplug pending")));
  ASSERT_NE(vm_.hotplug.Find("blk0"), nullptr);
  EXPECT_TRUE(vm_.hotplug.Find("blk0")->unplug_pending);
  ASSERT_OK_AND_ASSIGN(PluggedDevice d, hp.AddDisk({.path = disk}));
  EXPECT_EQ(d.slot, 1);  // the slot is free again, the id is not reused
  EXPECT_THAT(Ids(), ElementsAre("blk1"));
}

TEST_F(HotplugTest, GuestRefusalTearsNothingDown) {
  RecordDisk(vm_);
  peer_.Negotiate()
      .ExpectCommand("device_del")
      .Reply()
      .Event("DEVICE_UNPLUG_GUEST_ERROR",
             {{"device", "blk0"}, {"path", "/machine/peripheral/blk0"}});
  EXPECT_THAT(
      Start().Remove("blk0"),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               HasSubstr("blk0: the guest refused the unplug (DEVICE_UNPLUG_GUEST_ERROR)")));
  EXPECT_THAT(Ids(), ElementsAre("blk0"));
  EXPECT_FALSE(vm_.hotplug.Find("blk0")->unplug_pending);
}

TEST_F(HotplugTest, AcpiOstFailureIsARefusalButProgressIsNot) {
  RecordDisk(vm_);
  peer_.Negotiate()
      .ExpectCommand("device_del")
      .Reply()
      .Event("ACPI_DEVICE_OST", {{"info", {{"device", "blk0"}, {"source", 3}, {"status", 0x84}}}})
      .Event("ACPI_DEVICE_OST", {{"info", {{"device", "blk0"}, {"source", 3}, {"status", 0x82}}}});
  EXPECT_THAT(Start().Remove("blk0"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("ACPI _OST status 0x82")));
  EXPECT_THAT(Ids(), ElementsAre("blk0"));
}

TEST_F(HotplugTest, UnplugOfAnUnknownDevice) {
  peer_.Negotiate();
  EXPECT_THAT(Start().Remove("blk9"),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("device blk9: not plugged into sandbox sb1")));
}

TEST_F(HotplugTest, UnplugOfADeviceQemuNoLongerHasFinishesIt) {
  RecordDisk(vm_);
  peer_.Negotiate()
      .ExpectCommand("device_del")
      .ReplyError("DeviceNotFound", "Device 'blk0' not found")
      .ExpectCommand("blockdev-del")
      .Reply();
  EXPECT_THAT(Start().Remove("blk0"), IsOk());
  EXPECT_THAT(Ids(), IsEmpty());
}

// ---- serial ports ----

TEST_F(HotplugTest, SerialPortIsASocketChardevThenAPortOnTheVirtioSerialBus) {
  vm_.run_dir = "/run/runvm/.vm/0123456789abcdef";
  peer_.Negotiate()
      .ExpectCommand("chardev-add",
                     {{"id", "char-port0"},
                      {"backend",
                       {{"type", "socket"},
                        {"data",
                         {{"addr",
                           {{"type", "unix"},
                            {"data", {{"path", "/run/runvm/.vm/0123456789abcdef/port0.sock"}}}}},
                          {"server", true},
                          {"wait", false}}}}}})
      .Reply()
      .ExpectCommand("device_add", {{"driver", "virtserialport"},
                                    {"id", "port0"},
                                    {"bus", "serial0.0"},
                                    {"nr", 2},
                                    {"chardev", "char-port0"},
                                    {"name", "io-c1"}})
      .Reply()
      .ExpectCommand("device_del", {{"id", "port0"}})
      .Reply()
      .Event("DEVICE_DELETED", {{"device", "port0"}})
      .ExpectCommand("chardev-remove", {{"id", "char-port0"}})
      .Reply();
  Hotplug& hp = Start();
  ASSERT_OK_AND_ASSIGN(PluggedDevice d, hp.AddSerialPort("io-c1"));
  EXPECT_EQ(d.source, "/run/runvm/.vm/0123456789abcdef/port0.sock");
  EXPECT_EQ(d.guest_address, "io-c1");
  EXPECT_THAT(hp.AddSerialPort("io-c1"),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("already plugged as port0")));
  EXPECT_THAT(hp.AddSerialPort("agent.0"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(hp.Remove("port0"), IsOk());
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(HotplugTest, SerialPortsRunOut) {
  for (int nr = 2; nr < kSerialMaxPorts; ++nr) {
    Record({.id = absl::StrCat("port", nr),
            .kind = kKindSerialPort,
            .slot = nr,
            .guest_address = absl::StrCat("io-", nr)});
  }
  peer_.Negotiate();
  EXPECT_THAT(Start().AddSerialPort("io-x"), StatusIs(absl::StatusCode::kResourceExhausted,
                                                      HasSubstr("all 29 serial ports are in use")));
}

// ---- intents and reconciliation ----

// What each checkpoint saw: "op/step" while an operation runs, "-" once it is settled.
class IntentLog {
 public:
  explicit IntentLog(RunningVm& vm) : vm_(vm) {}
  HotplugOptions Options(int fail_at = -1) {
    return {.checkpoint = [this, fail_at]() -> absl::Status {
      const auto& in = vm_.hotplug.intent;
      seen.push_back(in ? in->op + "/" + in->step : "-");
      if (static_cast<int>(seen.size()) - 1 == fail_at) {
        return absl::ResourceExhaustedError("No space left on device");
      }
      return absl::OkStatus();
    }};
  }
  std::vector<std::string> seen;

 private:
  RunningVm& vm_;
};

TEST_F(HotplugTest, EachPlugStepIsIntendedBeforeItRuns) {
  IntentLog log(vm_);
  std::string disk = Disk("d.img", kMiB);
  peer_.Negotiate().ExpectCommand("blockdev-add").Reply().ExpectCommand("device_add").Reply();
  EXPECT_THAT(Start(log.Options()).AddDisk({.path = disk}), IsOk());
  EXPECT_THAT(log.seen, ElementsAre("plug/blockdev-add", "plug/device_add", "-"));
  EXPECT_FALSE(vm_.hotplug.intent.has_value());
  EXPECT_EQ(vm_.hotplug.next_index, 1);
}

TEST_F(HotplugTest, NicIntentNamesEveryFdBeforeTheFirstIsHandedOver) {
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/net/tun";
  vm_.config.default_vcpus = 2;
  std::vector<std::vector<std::string>> fds_at_checkpoint;
  HotplugOptions options{.checkpoint = [&]() -> absl::Status {
    const auto& in = vm_.hotplug.intent;
    fds_at_checkpoint.push_back(in ? in->device.fd_names : std::vector<std::string>{});
    return absl::OkStatus();
  }};
  peer_.Negotiate()
      .ExpectCommand("getfd")
      .ExpectFd()
      .Reply()
      .ExpectCommand("getfd")
      .ExpectFd()
      .Reply()
      .ExpectCommand("netdev_add")
      .Reply()
      .ExpectCommand("device_add")
      .Reply();
  ASSERT_OK_AND_ASSIGN(PluggedDevice d, Start(options).AddNic(
                                            {.tap_name = UniqueTap(), .mac = "02:00:ca:fe:00:01"}));
  ASSERT_EQ(fds_at_checkpoint.size(), 4u);
  EXPECT_THAT(fds_at_checkpoint[0], ElementsAre("fd-net0-0", "fd-net0-1"));
  EXPECT_THAT(d.fd_names, IsEmpty());
}

TEST_F(HotplugTest, EachUnplugStepIsIntendedBeforeItRuns) {
  IntentLog log(vm_);
  RecordDisk(vm_);
  peer_.Negotiate()
      .ExpectCommand("device_del")
      .Reply()
      .Event("DEVICE_DELETED", {{"device", "blk0"}})
      .ExpectCommand("blockdev-del")
      .Reply();
  EXPECT_THAT(Start(log.Options()).Remove("blk0"), IsOk());
  EXPECT_THAT(log.seen, ElementsAre("unplug/device_del", "unplug/teardown", "-"));
}

TEST_F(HotplugTest, AnIntentThatCannotBeSavedStopsThePlugBeforeQemuIsTouched) {
  IntentLog log(vm_);
  std::string disk = Disk("d.img", kMiB);
  peer_.Negotiate();
  EXPECT_THAT(Start(log.Options(/*fail_at=*/0)).AddDisk({.path = disk}),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("sandbox sb1: save: No space left on device")));
  EXPECT_THAT(Ids(), IsEmpty());
  EXPECT_FALSE(vm_.hotplug.intent.has_value());
}

TEST_F(HotplugTest, ALaterIntentThatCannotBeSavedUndoesTheEarlierSteps) {
  IntentLog log(vm_);
  std::string disk = Disk("d.img", kMiB);
  peer_.Negotiate()
      .ExpectCommand("blockdev-add")
      .Reply()
      .ExpectCommand("blockdev-del", {{"node-name", "drive-blk0"}})
      .Reply();
  EXPECT_THAT(Start(log.Options(/*fail_at=*/1)).AddDisk({.path = disk}),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("No space left")));
  EXPECT_THAT(Ids(), IsEmpty());
  EXPECT_THAT(log.seen, ElementsAre("plug/blockdev-add", "plug/device_add", "-"));
}

TEST_F(HotplugTest, AnUnreconciledIntentBlocksTheNextOperation) {
  vm_.hotplug.intent =
      HotplugIntent{.op = kIntentPlug, .step = "device_add", .device = {.id = "blk4"}};
  std::string disk = Disk("d.img", kMiB);
  peer_.Negotiate();
  EXPECT_THAT(
      Start().AddDisk({.path = disk}),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               HasSubstr("the interrupted plug of blk4 (at device_add) is not reconciled")));
}

// The queries every Reconcile makes, around what the intent needs.
void ExpectStatusAndPeripherals(FakeQmpPeer& peer, const std::vector<std::string>& ids) {
  Json children = Json::array();
  for (const std::string& id : ids) children.push_back({{"name", id}, {"type", "child<x>"}});
  peer.ExpectCommand("query-status")
      .Reply({{"status", "running"}, {"running", true}})
      .ExpectCommand("qom-list", {{"path", "/machine/peripheral"}})
      .Reply(children);
}

void ExpectBackendQueries(FakeQmpPeer& peer, const std::vector<std::string>& nodes = {},
                          const std::vector<std::string>& objects = {},
                          const std::vector<std::string>& chardevs = {}) {
  Json n = Json::array(), o = Json::array(), c = Json::array();
  for (const std::string& x : nodes) n.push_back({{"node-name", x}});
  for (const std::string& x : objects) o.push_back({{"name", x}, {"type", "child<x>"}});
  for (const std::string& x : chardevs) c.push_back({{"label", x}, {"filename", "unix:"}});
  peer.ExpectCommand("query-named-block-nodes")
      .Reply(n)
      .ExpectCommand("qom-list", {{"path", "/objects"}})
      .Reply(o)
      .ExpectCommand("query-chardev")
      .Reply(c);
}

TEST_F(HotplugTest, ReconcileRollsAPlugForwardWhenQemuHasTheDevice) {
  IntentLog log(vm_);
  vm_.hotplug.next_index = 3;
  vm_.hotplug.intent = HotplugIntent{.op = kIntentPlug,
                                     .step = "device_add",
                                     .device = {.id = "net2",
                                                .kind = kKindNet,
                                                .bus = "pci-bridge-0",
                                                .slot = 1,
                                                .netdev = "netdev-net2",
                                                .fd_names = {"fd-net2-0"}}};
  peer_.Negotiate();
  ExpectStatusAndPeripherals(peer_, {"net2"});
  ExpectBackendQueries(peer_, {"#block123"}, {"ram", "rng0"}, {"qmp", "agent"});
  ASSERT_OK_AND_ASSIGN(ReconcileReport r, Start(log.Options()).Reconcile());
  EXPECT_EQ(r.run_state, "running");
  EXPECT_THAT(r.actions,
              ElementsAre(HasSubstr("net2: the interrupted plug (at device_add) rolled forward")));
  ASSERT_THAT(Ids(), ElementsAre("net2"));
  EXPECT_THAT(vm_.hotplug.Find("net2")->fd_names, IsEmpty());
  EXPECT_FALSE(vm_.hotplug.intent.has_value());
  EXPECT_THAT(log.seen, ElementsAre("-"));  // saved once, settled
}

TEST_F(HotplugTest, ReconcileRollsAPlugBackRemovingWhatExistsAndToleratingWhatDoesNot) {
  vm_.hotplug.next_index = 5;
  vm_.hotplug.intent = HotplugIntent{.op = kIntentPlug,
                                     .step = "device_add",
                                     .device = {.id = "net4",
                                                .kind = kKindNet,
                                                .netdev = "netdev-net4",
                                                .fd_names = {"fd-net4-0", "fd-net4-1"}}};
  peer_.Negotiate();
  ExpectStatusAndPeripherals(peer_, {"blk0"});
  peer_.ExpectCommand("netdev_del", {{"id", "netdev-net4"}})
      .Reply()
      .ExpectCommand("closefd", {{"fdname", "fd-net4-0"}})
      .ReplyError("GenericError", "File descriptor named 'fd-net4-0' not found")
      .ExpectCommand("closefd", {{"fdname", "fd-net4-1"}})
      .ReplyError("GenericError", "File descriptor named 'fd-net4-1' not found");
  ExpectBackendQueries(peer_);
  ASSERT_OK_AND_ASSIGN(ReconcileReport r, Start().Reconcile());
  EXPECT_THAT(r.actions, ElementsAre(HasSubstr("net4: the interrupted plug (at device_add) rolled "
                                               "back")));
  EXPECT_THAT(Ids(), IsEmpty());
  EXPECT_EQ(vm_.hotplug.next_index, 5) << "net4 is never handed out again";
}

TEST_F(HotplugTest, ReconcileFinishesAnUnplugWhoseDeviceIsGone) {
  RecordDisk(vm_);
  vm_.hotplug.intent =
      HotplugIntent{.op = kIntentUnplug, .step = "device_del", .device = *vm_.hotplug.Find("blk0")};
  peer_.Negotiate();
  ExpectStatusAndPeripherals(peer_, {});
  peer_.ExpectCommand("blockdev-del", {{"node-name", "drive-blk0"}}).Reply();
  ExpectBackendQueries(peer_);
  ASSERT_OK_AND_ASSIGN(ReconcileReport r, Start().Reconcile());
  EXPECT_THAT(r.actions, ElementsAre(HasSubstr("no longer has the device")));
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(HotplugTest, ReconcileFinishesATeardownThatTheCrashCut) {
  // Release had forgotten the device and deleted its node before the crash: only the intent knows.
  vm_.hotplug.intent =
      HotplugIntent{.op = kIntentUnplug,
                    .step = "teardown",
                    .device = {.id = "blk0", .kind = kKindVirtioBlk, .node_name = "drive-blk0"}};
  peer_.Negotiate();
  ExpectStatusAndPeripherals(peer_, {});
  peer_.ExpectCommand("blockdev-del", {{"node-name", "drive-blk0"}})
      .ReplyError("GenericError", "Failed to find node with node-name='drive-blk0'");
  ExpectBackendQueries(peer_);
  EXPECT_THAT(Start().Reconcile(), IsOk());
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(HotplugTest, ReconcileCarriesAnUnplugThroughThatQemuIsStillDoing) {
  RecordDisk(vm_);
  vm_.hotplug.intent =
      HotplugIntent{.op = kIntentUnplug, .step = "device_del", .device = *vm_.hotplug.Find("blk0")};
  peer_.Negotiate();
  ExpectStatusAndPeripherals(peer_, {"blk0"});
  peer_.ExpectCommand("device_del", {{"id", "blk0"}})
      .ReplyError("GenericError", "Device blk0 is already in the process of unplug")
      .Event("DEVICE_DELETED", {{"device", "blk0"}})
      .ExpectCommand("blockdev-del", {{"node-name", "drive-blk0"}})
      .Reply();
  ExpectBackendQueries(peer_);
  ASSERT_OK_AND_ASSIGN(ReconcileReport r, Start().Reconcile());
  EXPECT_THAT(r.actions, ElementsAre(HasSubstr("carried through")));
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(HotplugTest, ReconcileSetsAnInterruptedResizeAgain) {
  vm_.config.enable_virtio_mem = true;
  Record({.id = "virtiomem0",
          .kind = kKindVirtioMem,
          .size_bytes = 128 * kMiB,
          .object = "mem-virtiomem0"});
  vm_.hotplug.intent = HotplugIntent{.op = kIntentResize,
                                     .step = "qom-set",
                                     .device = {.id = "virtiomem0",
                                                .kind = kKindVirtioMem,
                                                .size_bytes = 384 * kMiB,
                                                .object = "mem-virtiomem0"}};
  peer_.Negotiate();
  ExpectStatusAndPeripherals(peer_, {"virtiomem0"});
  peer_
      .ExpectCommand("qom-set", {{"path", "/machine/peripheral/virtiomem0"},
                                 {"property", "requested-size"},
                                 {"value", 384 * kMiB}})
      .Reply();
  ExpectBackendQueries(peer_, {}, {"mem-virtiomem0"});
  EXPECT_THAT(Start().Reconcile(), IsOk());
  EXPECT_EQ(vm_.hotplug.Find("virtiomem0")->size_bytes, 384 * kMiB);
}

TEST_F(HotplugTest, ReconcileRemovesHotplugBackendsNoDeviceOwnsAndNothingElse) {
  RecordDisk(vm_);
  peer_.Negotiate();
  ExpectStatusAndPeripherals(peer_, {"blk0", "cpu12", "scsi0", "pci-bridge-0", "rp1"});
  ExpectBackendQueries(peer_, {"drive-blk0", "#block9", "drive-blk7", "drive-blk7", "image"},
                       {"ram", "mem-dimm3", "mem-image"}, {"char-vublk2", "agent", "char-x"});
  peer_.ExpectCommand("blockdev-del", {{"node-name", "drive-blk7"}})
      .Reply()
      .ExpectCommand("object-del", {{"id", "mem-dimm3"}})
      .Reply()
      .ExpectCommand("chardev-remove", {{"id", "char-vublk2"}})
      .Reply();
  IntentLog log(vm_);
  ASSERT_OK_AND_ASSIGN(ReconcileReport r, Start(log.Options()).Reconcile());
  EXPECT_THAT(r.actions, ElementsAre(HasSubstr("drive-blk7: orphan removed"),
                                     HasSubstr("mem-dimm3: orphan removed"),
                                     HasSubstr("char-vublk2: orphan removed")));
  EXPECT_THAT(Ids(), ElementsAre("blk0"));
  EXPECT_EQ(vm_.hotplug.next_index, 13) << "past cpu12, which QEMU has";
  EXPECT_THAT(log.seen, ElementsAre("-"));
}

TEST_F(HotplugTest, ReconcileWithNothingToDoSavesNothing) {
  RecordDisk(vm_);
  peer_.Negotiate();
  ExpectStatusAndPeripherals(peer_, {"blk0"});
  ExpectBackendQueries(peer_, {"drive-blk0"});
  IntentLog log(vm_);
  ASSERT_OK_AND_ASSIGN(ReconcileReport r, Start(log.Options()).Reconcile());
  EXPECT_THAT(r.actions, IsEmpty());
  EXPECT_THAT(log.seen, IsEmpty());
}

// ---- VFIO ----

class VfioHotplugTest : public HotplugTest {
 protected:
  // A fake sysfs: IOMMU group 7 holds two functions of one PCIe card, group 9 one conventional
  // PCI function bound to another driver, group 11 an mdev of a PCIe parent.
  VfioHotplugTest() {
    Function("0000:3b:00.0", 7, "vfio-pci", 4096);
    Function("0000:3b:00.1", 7, "vfio-pci", 4096);
    Function("0000:5e:00.0", 9, "e1000e", 256);
    Function("0000:00:02.0", 10, "i915", 4096);
    const std::string uuid = "4b20d080-1b54-4048-85b3-a6a62d165c01";
    const std::string mdev = root() + "/devices/pci0000:00/0000:00:02.0/" + uuid;
    dir_.Write("sys/devices/pci0000:00/0000:00:02.0/" + uuid + "/.keep", "");
    Link("../../../devices/pci0000:00/0000:00:02.0/" + uuid, "bus/mdev/devices/" + uuid);
    Link("../../../../kernel/iommu_groups/11",
         "devices/pci0000:00/0000:00:02.0/" + uuid + "/iommu_group");
    Link("../../../../devices/pci0000:00/0000:00:02.0/" + uuid,
         "kernel/iommu_groups/11/devices/" + uuid);
  }
  std::string root() const { return dir_.path() + "/sys"; }
  void Link(const std::string& target, const std::string& name) {
    std::string path = root() + "/" + name;
    dir_.Write("sys/" + name + ".tmp", "");
    ::unlink((path + ".tmp").c_str());
    ASSERT_EQ(::symlink(target.c_str(), path.c_str()), 0) << path;
  }
  void Function(const std::string& bdf, int group, const std::string& driver, int config_size) {
    const std::string dev = "devices/pci0000:00/" + bdf;
    dir_.Write("sys/" + dev + "/config", std::string(config_size, '\0'));
    dir_.Write("sys/bus/pci/drivers/" + driver + "/.keep", "");
    dir_.Write("sys/kernel/iommu_groups/" + std::to_string(group) + "/.keep", "");
    Link("../../../" + dev, "bus/pci/devices/" + bdf);
    Link("../../../bus/pci/drivers/" + driver, dev + "/driver");
    Link("../../../kernel/iommu_groups/" + std::to_string(group), dev + "/iommu_group");
    Link("../../../../" + dev, "kernel/iommu_groups/" + std::to_string(group) + "/devices/" + bdf);
  }
  HotplugOptions Options() { return {.sysfs_root = root()}; }
};

TEST_F(VfioHotplugTest, EveryFunctionOfTheGroupGoesOnABridgeSlotByDefault) {
  peer_.Negotiate()
      .ExpectCommand("device_add", {{"driver", "vfio-pci"},
                                    {"id", "vfio0"},
                                    {"host", "0000:3b:00.0"},
                                    {"bus", "pci-bridge-0"},
                                    {"addr", "01"}})
      .Reply()
      .ExpectCommand("device_add", {{"id", "vfio1"}, {"host", "0000:3b:00.1"}, {"addr", "02"}})
      .Reply();
  ASSERT_OK_AND_ASSIGN(std::vector<PluggedDevice> d, Start(Options()).AddVfio("3b:00.1"));
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[1].guest_address, "02/02");
}

TEST_F(VfioHotplugTest, OnQ35RootBusMeansARootPortNeverPcie0) {
  vm_.config.machine_type = "q35";
  vm_.config.hotplug_vfio_on_root_bus = true;
  vm_.config.pcie_root_port = 2;
  peer_.Negotiate()
      .ExpectCommand("device_add", {{"id", "vfio0"}, {"bus", "rp0"}})
      .Reply()
      .ExpectCommand("device_add", {{"id", "vfio1"}, {"bus", "rp1"}})
      .Reply();
  ASSERT_OK_AND_ASSIGN(std::vector<PluggedDevice> d, Start(Options()).AddVfio("/dev/vfio/7"));
  EXPECT_EQ(d[0].guest_address, "03/00");  // the root port after the one bridge
  EXPECT_FALSE(peer_.commands().at(1)["arguments"].contains("addr"));
}

TEST_F(VfioHotplugTest, NoFreeRootPortRollsBackTheGroup) {
  vm_.config.machine_type = "q35";
  vm_.config.hotplug_vfio_on_root_bus = true;
  vm_.config.pcie_root_port = 1;
  peer_.Negotiate()
      .ExpectCommand("device_add", {{"id", "vfio0"}, {"bus", "rp0"}})
      .Reply()
      .ExpectCommand("device_del", {{"id", "vfio0"}})
      .Reply()
      .Event("DEVICE_DELETED", {{"device", "vfio0"}});
  EXPECT_THAT(Start(Options()).AddVfio("0000:3b:00.0"),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("VFIO device 0000:3b:00.1: all 1 PCIe root ports are in use")));
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(VfioHotplugTest, ZeroRootPortsIsAClearError) {
  vm_.config.machine_type = "q35";
  vm_.config.hotplug_vfio_on_root_bus = true;
  peer_.Negotiate();
  EXPECT_THAT(Start(Options()).AddVfio("0000:3b:00.0"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("pcie_root_port is 0")));
}

TEST_F(VfioHotplugTest, OnPcRootBusQemuPlacesIt) {
  vm_.config.machine_type = "pc";
  vm_.config.hotplug_vfio_on_root_bus = true;
  peer_.Negotiate()
      .ExpectCommand("device_add", {{"bus", "pci.0"}})
      .Reply()
      .ExpectCommand("device_add", {{"bus", "pci.0"}})
      .Reply();
  EXPECT_THAT(Start(Options()).AddVfio("0000:3b:00.0"), IsOk());
  EXPECT_FALSE(peer_.commands().at(1)["arguments"].contains("addr"));
}

TEST_F(VfioHotplugTest, MediatedDeviceUsesSysfsdev) {
  peer_.Negotiate()
      .ExpectCommand("device_add",
                     {{"sysfsdev", "/sys/bus/mdev/devices/4b20d080-1b54-4048-85b3-a6a62d165c01"}})
      .Reply();
  ASSERT_OK_AND_ASSIGN(std::vector<PluggedDevice> d,
                       Start(Options()).AddVfio("4b20d080-1b54-4048-85b3-a6a62d165c01"));
  EXPECT_FALSE(peer_.commands().at(1)["arguments"].contains("host"));
}

TEST_F(VfioHotplugTest, AFunctionNotBoundToVfioPciRefusesTheGroup) {
  peer_.Negotiate();
  EXPECT_THAT(Start(Options()).AddVfio("0000:5e:00.0"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("function 0000:5e:00.0 of IOMMU group 9 is bound to e1000e, not "
                                 "vfio-pci")));
}

TEST_F(VfioHotplugTest, BadNames) {
  peer_.Negotiate();
  Hotplug& hp = Start(Options());
  EXPECT_THAT(hp.AddVfio("../../etc"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(hp.AddVfio("0000:77:00.0"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("not found in")));
  EXPECT_THAT(hp.AddVfio("/dev/vfio/99"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("IOMMU group 99 not found")));
}

}  // namespace
}  // namespace runvm::qemu

namespace runvm::qemu {
namespace {

// The first step of each kind failing: nothing else is sent and nothing is recorded.
TEST_F(HotplugTest, FirstStepFailuresLeaveNothing) {
  vm_.config.block_device_driver = "nvdimm";
  vm_.config.enable_hugepages = true;
  vm_.config.shared_fs = "none";
  std::string pmem = Disk("pmem.img", 2 * kMiB);
  peer_.Negotiate()
      .ExpectCommand("query-memory-devices")
      .Reply(Json::array())
      .ExpectCommand("object-add")
      .ReplyError("GenericError", "cannot map pmem.img")
      .ExpectCommand("query-memory-devices")
      .Reply(Json::array())
      .ExpectCommand("object-add")
      .ReplyError("GenericError", "Cannot allocate memory")
      .ExpectCommand("query-hotpluggable-cpus")
      .ReplyError("CommandNotFound", "The command query-hotpluggable-cpus has not been found");
  Hotplug& hp = Start();
  EXPECT_THAT(hp.AddDisk({.path = pmem}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("nv0: object-add")));
  EXPECT_THAT(hp.AddMemory(128),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("dimm1: object-add")));
  EXPECT_THAT(hp.AddVcpus(1),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("CommandNotFound")));
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(HotplugTest, VhostUserChardevFailureLeavesNothing) {
  vm_.config.enable_hugepages = true;
  std::string sock = dir_.path() + "/blk.sock";
  int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  peer_.Negotiate().ExpectCommand("chardev-add").ReplyError("GenericError", "Connection refused");
  EXPECT_THAT(Start().AddDisk({.path = sock, .driver = "vhost-user-blk"}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("Connection refused")));
  EXPECT_THAT(Ids(), IsEmpty());
  ::close(s);
}

TEST_F(HotplugTest, GetfdFailureClosesTheFdsAlreadyGiven) {
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/net/tun";
  peer_.Negotiate()
      .ExpectCommand("getfd", {{"fdname", "fd-net0-0"}})
      .ExpectFd()
      .Reply()
      .ExpectCommand("getfd", {{"fdname", "fd-net0-1"}})
      .ExpectFd()
      .ReplyError("GenericError", "No file descriptor supplied via SCM_RIGHTS")
      .ExpectCommand("closefd", {{"fdname", "fd-net0-0"}})
      .Reply();
  EXPECT_THAT(Start().AddNic({.tap_name = UniqueTap(), .mac = "02:00:ca:fe:00:01", .queues = 2}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("net0: getfd fd-net0-1")));
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(VfioHotplugTest, ALaterFunctionFailingUnplugsTheEarlierOnes) {
  peer_.Negotiate()
      .ExpectCommand("device_add", {{"id", "vfio0"}})
      .Reply()
      .ExpectCommand("device_add", {{"id", "vfio1"}})
      .ReplyError("GenericError", "vfio 0000:3b:00.1: group 7 is not viable")
      .ExpectCommand("device_del", {{"id", "vfio0"}})
      .Reply()
      .Event("DEVICE_DELETED", {{"device", "vfio0"}});
  EXPECT_THAT(Start(Options()).AddVfio("0000:3b:00.0"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("group 7 is not viable")));
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(HotplugTest, VirtioMemFailuresKeepTheRecordAsItWas) {
  vm_.config.enable_virtio_mem = true;
  vm_.config.shared_fs = "none";
  vm_.max_memory_mib = 4096;
  peer_.Negotiate()
      .ExpectCommand("object-add")
      .Reply()
      .ExpectCommand("device_add")
      .ReplyError("GenericError", "virtio-mem is not compatible")
      .ExpectCommand("object-del", {{"id", "mem-virtiomem0"}})
      .Reply();
  EXPECT_THAT(Start().AddMemory(128), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Ids(), IsEmpty());
}

}  // namespace
}  // namespace runvm::qemu

namespace runvm::qemu {
namespace {

// QEMU 7.2 reports an unplugged vCPU only through its lapic child and an eject _OST naming no
// device; qom-list then decides.
TEST_F(HotplugTest, AnEjectReportIsConfirmedWithQomList) {
  Record({.id = "cpu0", .kind = kKindCpu, .slot = 1});
  peer_.Negotiate()
      .ExpectCommand("device_del", {{"id", "cpu0"}})
      .Reply()
      .Event("DEVICE_DELETED", {{"path", "/machine/peripheral/cpu0/lapic"}})
      .Event("ACPI_DEVICE_OST", {{"info", {{"slot", "1"}, {"source", 3}, {"status", 0}}}})
      .ExpectCommand("qom-list")
      .Reply(Json::array({{{"name", "serial0"}, {"type", "child<virtio-serial-pci>"}}}))
      .ExpectCommand("query-hotpluggable-cpus")
      .Reply(HotpluggableCpus(1, 4));
  ASSERT_OK_AND_ASSIGN(VcpuResult r, Start().RemoveVcpus(1));
  EXPECT_THAT(r.ids, ElementsAre("cpu0"));
  EXPECT_THAT(Ids(), IsEmpty());
}

}  // namespace
}  // namespace runvm::qemu
