// Hotplug of virtio-serial ports.
#include "tests/unit/hypervisor/qemu/hotplug_fixture.h"

namespace runvm::qemu {
namespace {

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

}  // namespace
}  // namespace runvm::qemu
