// Hotplug into a QEMU that runs as hypervisor_user (docs/security.md): what it cannot open
// itself any more reaches it by fd (a stdio port's listening socket by getfd, a disk through an
// fd set), and what it would have to open itself is refused.
#include <sys/stat.h>

#include "tests/unit/hypervisor/qemu/hotplug_fixture.h"

namespace runvm::qemu {
namespace {

class ConfinedHotplugTest : public HotplugTest {
 protected:
  ConfinedHotplugTest() { vm_.config.hypervisor_user = "runvm-qemu"; }
};

TEST_F(ConfinedHotplugTest, AStdioPortListensOnASocketRunvmMadeAndHandsOver) {
  vm_.run_dir = dir_.path();
  const std::string socket = dir_.path() + "/port0.sock";
  peer_.Negotiate()
      .ExpectCommand("getfd", {{"fdname", "fd-port0"}})
      .ExpectFd()
      .Reply()
      .ExpectCommand("chardev-add",
                     {{"id", "char-port0"},
                      {"backend",
                       {{"type", "socket"},
                        {"data",
                         {{"addr", {{"type", "fd"}, {"data", {{"str", "fd-port0"}}}}},
                          {"server", true},
                          {"wait", false}}}}}})
      .Reply()
      .ExpectCommand("device_add", {{"driver", "virtserialport"}, {"id", "port0"}})
      .Reply()
      .ExpectCommand("device_del", {{"id", "port0"}})
      .Reply()
      .Event("DEVICE_DELETED", {{"device", "port0"}})
      .ExpectCommand("chardev-remove", {{"id", "char-port0"}})
      .Reply();
  Hotplug& hp = Start();
  ASSERT_OK_AND_ASSIGN(PluggedDevice d, hp.AddSerialPort("io-c1"));
  EXPECT_EQ(d.source, socket);
  ASSERT_EQ(peer_.received_fds().size(), 1u);
  EXPECT_TRUE(S_ISSOCK(peer_.received_fds()[0].st_mode));
  struct stat st;
  ASSERT_EQ(::stat(socket.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(hp.Remove("port0"), IsOk());
  EXPECT_NE(::stat(socket.c_str(), &st), 0) << "the socket goes with the port";
}

TEST_F(ConfinedHotplugTest, AFailedChardevClosesTheFdAndRemovesTheSocket) {
  vm_.run_dir = dir_.path();
  peer_.Negotiate()
      .ExpectCommand("getfd", {{"fdname", "fd-port0"}})
      .ExpectFd()
      .Reply()
      .ExpectCommand("chardev-add")
      .ReplyError("GenericError", "no")
      .ExpectCommand("closefd", {{"fdname", "fd-port0"}})
      .Reply();
  EXPECT_THAT(Start().AddSerialPort("io-c1"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/port0.sock"));
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(ConfinedHotplugTest, ADiskIsOpenedByRunvmAndReachesQemuThroughAnFdSet) {
  std::string disk = Disk("d.img", 8 * kMiB);
  peer_.Negotiate()
      .ExpectCommand("add-fd", {{"opaque", "blk0"}})
      .ExpectFd()
      .Reply({{"fdset-id", 3}, {"fd", 42}})
      .ExpectCommand("blockdev-add", {{"node-name", "drive-blk0"},
                                      {"file", {{"driver", "file"}, {"filename", "/dev/fdset/3"}}}})
      .Reply()
      .ExpectCommand("device_add", {{"driver", "virtio-blk-pci"}, {"id", "blk0"}})
      .Reply()
      .ExpectCommand("device_del", {{"id", "blk0"}})
      .Reply()
      .Event("DEVICE_DELETED", {{"device", "blk0"}})
      .ExpectCommand("blockdev-del", {{"node-name", "drive-blk0"}})
      .Reply()
      .ExpectCommand("query-fdsets")
      .Reply(Json::array({{{"fdset-id", 3}, {"fds", {{{"fd", 42}, {"opaque", "blk0"}}}}},
                          {{"fdset-id", 4}, {"fds", {{{"fd", 43}, {"opaque", "other"}}}}}}))
      .ExpectCommand("remove-fd", {{"fdset-id", 3}})
      .Reply();
  Hotplug& hp = Start();
  ASSERT_OK_AND_ASSIGN(PluggedDevice d, hp.AddDisk({.path = disk}));
  ASSERT_EQ(peer_.received_fds().size(), 1u);
  EXPECT_TRUE(S_ISREG(peer_.received_fds()[0].st_mode));
  EXPECT_THAT(hp.Remove(d.id), IsOk());
}

TEST_F(ConfinedHotplugTest, AFailedBlockNodeRemovesItsFdSet) {
  std::string disk = Disk("d.img", 8 * kMiB);
  peer_.Negotiate()
      .ExpectCommand("add-fd")
      .ExpectFd()
      .Reply({{"fdset-id", 0}, {"fd", 40}})
      .ExpectCommand("blockdev-add")
      .ReplyError("GenericError", "no")
      .ExpectCommand("remove-fd", {{"fdset-id", 0}})
      .Reply();
  EXPECT_THAT(Start().AddDisk({.path = disk}), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(ConfinedHotplugTest, WhatQemuWouldOpenItselfIsRefusedNamingTheWayOut) {
  vm_.config.enable_hugepages = true;  // vhost-user-blk's own precondition, met
  std::string disk = Disk("d.img", 8 * kMiB);
  peer_.Negotiate();
  Hotplug& hp = Start();
  for (const char* driver : {"nvdimm", "vhost-user-blk"}) {
    EXPECT_THAT(hp.AddDisk({.path = disk, .driver = driver}),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         HasSubstr("runs as hypervisor_user \"runvm-qemu\"")))
        << driver;
  }
  EXPECT_THAT(hp.AddVfio("0000:01:00.0"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("hypervisor_user = \"\"")));
}

}  // namespace
}  // namespace runvm::qemu
