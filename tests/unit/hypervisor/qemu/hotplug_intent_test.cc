// Intents before each step, and Reconcile after a crash.
#include "tests/unit/hypervisor/qemu/hotplug_fixture.h"

namespace runvm::qemu {
namespace {

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

}  // namespace
}  // namespace runvm::qemu
