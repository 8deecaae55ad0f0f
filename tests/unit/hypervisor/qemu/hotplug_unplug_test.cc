// Unplug: the wait for DEVICE_DELETED, backends torn down after, timeouts and refusals.
#include "tests/unit/hypervisor/qemu/hotplug_fixture.h"

namespace runvm::qemu {
namespace {

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
