// Hotplug of disks: virtio-blk, virtio-scsi, NVDIMM, vhost-user-blk; slots and rollback.
#include "tests/unit/hypervisor/qemu/hotplug_fixture.h"

namespace runvm::qemu {
namespace {

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

}  // namespace
}  // namespace runvm::qemu
