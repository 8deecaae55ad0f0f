// Hotplug of NICs: the tap's queues by getfd, netdev and device, and rollback.
#include "tests/unit/hypervisor/qemu/hotplug_fixture.h"

namespace runvm::qemu {
namespace {

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

}  // namespace
}  // namespace runvm::qemu
