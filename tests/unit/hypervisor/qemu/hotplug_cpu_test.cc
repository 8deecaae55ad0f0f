// Hotplug of vCPUs: placement, clamping, partial plugs, unplug order.
#include "tests/unit/hypervisor/qemu/hotplug_fixture.h"

namespace runvm::qemu {
namespace {

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

}  // namespace
}  // namespace runvm::qemu
