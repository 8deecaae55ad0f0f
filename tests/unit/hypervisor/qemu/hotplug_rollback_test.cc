// The first step of each kind failing, and later steps' rollback across kinds.
#include "tests/unit/hypervisor/qemu/hotplug_fixture.h"

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
