#include "hypervisor/qemu/vm_record.h"

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace runvm::qemu {
namespace {

using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::runvm::testing::TempDir;
using ::testing::HasSubstr;

RunningVm Sample() {
  RunningVm vm;
  vm.sandbox_id = "abc";
  vm.uuid = "6b7b3c1e-8f5a-4c3e-9d2b-1a2b3c4d5e6f";
  vm.run_dir = "/run/runvm/vm/0123456789abcdef";
  vm.shared_dir = vm.run_dir + "/shared";
  vm.qemu = {4242, 123456789, "/usr/bin/qemu-system-x86_64"};
  vm.virtiofsd = ProcessIdentity{4243, 123456790, "/usr/lib/qemu/virtiofsd"};
  return vm;
}

bool Same(const RunningVm& a, const RunningVm& b) {
  return a.sandbox_id == b.sandbox_id && a.uuid == b.uuid && a.run_dir == b.run_dir &&
         a.shared_dir == b.shared_dir && a.qemu == b.qemu && a.virtiofsd == b.virtiofsd &&
         a.watcher == b.watcher;
}

TEST(VmRecord, RoundTripsThroughTheStore) {
  TempDir dir;
  persist::Store store(dir.path());
  RunningVm vm = Sample();
  ASSERT_THAT(SaveVm(store, "sandboxes/abc/vm.json", vm), IsOk());
  ASSERT_OK_AND_ASSIGN(RunningVm back, LoadVm(store, "sandboxes/abc/vm.json"));
  EXPECT_TRUE(Same(back, vm));
  vm.virtiofsd.reset();
  vm.watcher = ProcessIdentity{1, 2, "/x"};
  ASSERT_OK_AND_ASSIGN(RunningVm back2, VmFromJson(VmToJson(vm)));
  EXPECT_TRUE(Same(back2, vm));
}

TEST(VmRecord, StrictAboutEveryField) {
  nlohmann::json j = VmToJson(Sample());
  for (const char* field : {"sandbox_id", "uuid", "run_dir", "shared_dir", "qemu"}) {
    nlohmann::json broken = j;
    broken.erase(field);
    EXPECT_THAT(VmFromJson(broken),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(std::string("field \"") + field + "\" is missing")));
  }
  nlohmann::json bad_pid = j;
  bad_pid["virtiofsd"]["pid"] = "4243";
  EXPECT_THAT(VmFromJson(bad_pid),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("\"virtiofsd\" is missing or not a process identity")));
  EXPECT_THAT(VmFromJson(nlohmann::json::array()), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(VmRecord, LoadNamesTheFile) {
  TempDir dir;
  persist::Store store(dir.path());
  ASSERT_THAT(store.Save("vm.json", kVmRecordFormat, kVmRecordVersion, {{"uuid", "x"}}), IsOk());
  EXPECT_THAT(LoadVm(store, "vm.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(dir.path() + "/vm.json: vm record: field \"sandbox_id\"")));
}

}  // namespace
}  // namespace runvm::qemu

namespace runvm::qemu {
namespace {

TEST(VmRecord, KeepsTheConfigurationAndTheDevices) {
  RunningVm vm = Sample();
  vm.config.default_bridges = 2;
  vm.config.kernel = "/k";
  vm.accelerator = "tcg";
  vm.max_memory_mib = 5120;
  vm.hotplug.next_index = 3;
  vm.hotplug.devices.push_back({.id = "blk0",
                                .kind = kKindVirtioBlk,
                                .bus = "pci-bridge-0",
                                .slot = 1,
                                .guest_address = "02/01",
                                .source = "/d.img",
                                .size_bytes = 1 << 20,
                                .node_name = "drive-blk0"});
  vm.hotplug.devices.push_back({.id = "net1",
                                .kind = kKindNet,
                                .netdev = "netdev-net1",
                                .fd_names = {"fd-net1-0"},
                                .unplug_pending = true});
  ASSERT_OK_AND_ASSIGN(RunningVm back, VmFromJson(VmToJson(vm)));
  EXPECT_EQ(back.config.default_bridges, 2);
  EXPECT_EQ(back.config.kernel, "/k");
  EXPECT_EQ(back.accelerator, "tcg");
  EXPECT_EQ(back.max_memory_mib, 5120);
  EXPECT_EQ(back.hotplug.next_index, 3);
  ASSERT_EQ(back.hotplug.devices.size(), 2u);
  EXPECT_EQ(back.hotplug.devices[0].guest_address, "02/01");
  EXPECT_EQ(back.hotplug.devices[0].node_name, "drive-blk0");
  EXPECT_EQ(back.hotplug.devices[1].fd_names, std::vector<std::string>{"fd-net1-0"});
  EXPECT_TRUE(back.hotplug.devices[1].unplug_pending);
  EXPECT_FALSE(back.hotplug.intent.has_value());
}

TEST(VmRecord, KeepsTheIntentOfAnInterruptedOperation) {
  RunningVm vm = Sample();
  vm.hotplug.intent = HotplugIntent{
      .op = kIntentPlug,
      .step = "netdev_add",
      .device = {
          .id = "net4", .kind = kKindNet, .netdev = "netdev-net4", .fd_names = {"fd-net4-0"}}};
  nlohmann::json j = VmToJson(vm);
  EXPECT_EQ(j["hotplug"]["intent"]["step"], "netdev_add");
  ASSERT_OK_AND_ASSIGN(RunningVm back, VmFromJson(j));
  ASSERT_TRUE(back.hotplug.intent.has_value());
  EXPECT_EQ(back.hotplug.intent->op, kIntentPlug);
  EXPECT_EQ(back.hotplug.intent->device.fd_names, std::vector<std::string>{"fd-net4-0"});

  nlohmann::json bad_op = j;
  bad_op["hotplug"]["intent"]["op"] = "explode";
  EXPECT_THAT(VmFromJson(bad_op), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("\"explode\" is not plug, unplug or resize")));
  nlohmann::json no_intent = j;
  no_intent["hotplug"].erase("intent");
  EXPECT_THAT(VmFromJson(no_intent), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("\"hotplug.intent\" is missing")));
}

TEST(VmRecord, RefusesBrokenDeviceEntries) {
  RunningVm vm = Sample();
  vm.hotplug.devices.push_back({.id = "blk0", .kind = kKindVirtioBlk});
  nlohmann::json j = VmToJson(vm);
  nlohmann::json twice = j;
  twice["hotplug"]["devices"].push_back(twice["hotplug"]["devices"][0]);
  EXPECT_THAT(VmFromJson(twice), StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("device id \"blk0\" appears twice")));
  nlohmann::json bad_slot = j;
  bad_slot["hotplug"]["devices"][0]["slot"] = "1";
  EXPECT_THAT(VmFromJson(bad_slot), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("field \"slot\" is missing or not an "
                                                       "integer")));
  nlohmann::json bad_config = j;
  bad_config["config"]["default_bridges"] = "two";
  EXPECT_THAT(VmFromJson(bad_config),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vm record: config")));
  nlohmann::json no_hotplug = j;
  no_hotplug.erase("hotplug");
  EXPECT_THAT(VmFromJson(no_hotplug),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"hotplug\" is missing")));
}

}  // namespace
}  // namespace runvm::qemu
