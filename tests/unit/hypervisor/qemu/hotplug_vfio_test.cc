// Hotplug of VFIO devices (a fake sysfs).
#include "tests/unit/hypervisor/qemu/hotplug_fixture.h"

namespace runvm::qemu {
namespace {

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
