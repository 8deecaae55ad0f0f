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
