// The fixture the Hotplug tests share (hotplug_<kind>_test.cc): a strict scripted QMP peer
// (tests/testing/fake_qmp_peer.h) in front of a Hotplug on a recorded VM, and a fake sysfs for
// VFIO.
#ifndef RUNVM_TESTS_UNIT_HYPERVISOR_QEMU_HOTPLUG_FIXTURE_H_
#define RUNVM_TESTS_UNIT_HYPERVISOR_QEMU_HOTPLUG_FIXTURE_H_

#include "hypervisor/qemu/hotplug.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "hypervisor/qemu/command_line.h"
#include "hypervisor/qmp/client.h"
#include "tests/testing/fake_qmp_peer.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace runvm::qemu {

using ::runvm::testing::FakeQmpPeer;
using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::runvm::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Json = nlohmann::json;

constexpr int64_t kMiB = 1 << 20;

class HotplugTest : public ::testing::Test {
 protected:
  HotplugTest() {
    vm_.sandbox_id = "sb1";
    vm_.config.default_bridges = 1;
    vm_.config.default_vcpus = 1;
    vm_.config.default_maxvcpus = 4;
    vm_.config.default_memory = 2048;
    vm_.config.memory_slots = 10;
    vm_.config.block_device_driver = "virtio-blk";
    // QEMU as root: paths on the command line (hotplug_confined_test.cc has the fd paths).
    vm_.config.hypervisor_user = "";
    vm_.max_memory_mib = 4096;
  }
  void TearDown() override {
    hotplug_.reset();
    client_.reset();
    EXPECT_THAT(peer_.Finish(), IsEmpty());
  }

  // Starts the scripted peer (its script begun with Negotiate()) and the Hotplug on it.
  Hotplug& Start(HotplugOptions options = {}) {
    peer_.Start();
    auto c = qmp::Client::Adopt(peer_.TakeClientEnd(), absl::Now() + absl::Seconds(5));
    EXPECT_THAT(c, IsOk());
    client_ = std::move(*c);
    hotplug_.emplace(*client_, vm_, options);
    return *hotplug_;
  }

  std::string Disk(const std::string& name, int64_t size) {
    std::string path = dir_.Write(name, "");
    EXPECT_EQ(::truncate(path.c_str(), size), 0);
    return path;
  }

  // A device recorded as plugged earlier.
  void Record(PluggedDevice d) { vm_.hotplug.devices.push_back(std::move(d)); }

  std::vector<std::string> Ids() const {
    std::vector<std::string> ids;
    for (const PluggedDevice& d : vm_.hotplug.devices) ids.push_back(d.id);
    return ids;
  }

  FakeQmpPeer peer_;
  RunningVm vm_;
  TempDir dir_;
  std::unique_ptr<qmp::Client> client_;
  std::optional<Hotplug> hotplug_;
};

class VfioHotplugTest : public HotplugTest {
 protected:
  // A fake sysfs: IOMMU group 7 holds two functions of one PCIe card, group 9 one conventional
  // PCI function bound to another driver, group 11 an mdev of a PCIe parent.
  VfioHotplugTest() {
    Function("0000:3b:00.0", 7, "vfio-pci", 4096);
    Function("0000:3b:00.1", 7, "vfio-pci", 4096);
    Function("0000:5e:00.0", 9, "e1000e", 256);
    Function("0000:00:02.0", 10, "i915", 4096);
    const std::string uuid = "4b20d080-1b54-4048-85b3-a6a62d165c01";
    const std::string mdev = root() + "/devices/pci0000:00/0000:00:02.0/" + uuid;
    dir_.Write("sys/devices/pci0000:00/0000:00:02.0/" + uuid + "/.keep", "");
    Link("../../../devices/pci0000:00/0000:00:02.0/" + uuid, "bus/mdev/devices/" + uuid);
    Link("../../../../kernel/iommu_groups/11",
         "devices/pci0000:00/0000:00:02.0/" + uuid + "/iommu_group");
    Link("../../../../devices/pci0000:00/0000:00:02.0/" + uuid,
         "kernel/iommu_groups/11/devices/" + uuid);
  }
  std::string root() const { return dir_.path() + "/sys"; }
  void Link(const std::string& target, const std::string& name) {
    std::string path = root() + "/" + name;
    dir_.Write("sys/" + name + ".tmp", "");
    ::unlink((path + ".tmp").c_str());
    ASSERT_EQ(::symlink(target.c_str(), path.c_str()), 0) << path;
  }
  void Function(const std::string& bdf, int group, const std::string& driver, int config_size) {
    const std::string dev = "devices/pci0000:00/" + bdf;
    dir_.Write("sys/" + dev + "/config", std::string(config_size, '\0'));
    dir_.Write("sys/bus/pci/drivers/" + driver + "/.keep", "");
    dir_.Write("sys/kernel/iommu_groups/" + std::to_string(group) + "/.keep", "");
    Link("../../../" + dev, "bus/pci/devices/" + bdf);
    Link("../../../bus/pci/drivers/" + driver, dev + "/driver");
    Link("../../../kernel/iommu_groups/" + std::to_string(group), dev + "/iommu_group");
    Link("../../../../" + dev, "kernel/iommu_groups/" + std::to_string(group) + "/devices/" + bdf);
  }
  HotplugOptions Options() { return {.sysfs_root = root()}; }
};

// A tap name no other test run uses at the same time.
inline std::string UniqueTap() { return absl::StrCat("rvt", ::getpid() % 100000); }

inline Json HotpluggableCpus(int plugged, int total) {
  Json list = Json::array();
  for (int s = total - 1; s >= 0; --s) {  // QEMU lists the highest id first
    Json e = {{"type", "max-x86_64-cpu"},
              {"vcpus-count", 1},
              {"props", {{"socket-id", s}, {"core-id", 0}, {"thread-id", 0}}}};
    if (s < plugged) e["qom-path"] = absl::StrCat("/machine/unattached/device[", s, "]");
    list.push_back(e);
  }
  return list;
}

inline void RecordDisk(RunningVm& vm) {
  vm.hotplug.next_index = 1;
  vm.hotplug.devices.push_back({.id = "blk0",
                                .kind = kKindVirtioBlk,
                                .bus = "pci-bridge-0",
                                .slot = 1,
                                .node_name = "drive-blk0"});
}

// What each checkpoint saw: "op/step" while an operation runs, "-" once it is settled.
class IntentLog {
 public:
  explicit IntentLog(RunningVm& vm) : vm_(vm) {}
  HotplugOptions Options(int fail_at = -1) {
    return {.checkpoint = [this, fail_at]() -> absl::Status {
      const auto& in = vm_.hotplug.intent;
      seen.push_back(in ? in->op + "/" + in->step : "-");
      if (static_cast<int>(seen.size()) - 1 == fail_at) {
        return absl::ResourceExhaustedError("No space left on device");
      }
      return absl::OkStatus();
    }};
  }
  std::vector<std::string> seen;

 private:
  RunningVm& vm_;
};

// The queries every Reconcile makes, around what the intent needs.
inline void ExpectStatusAndPeripherals(FakeQmpPeer& peer, const std::vector<std::string>& ids) {
  Json children = Json::array();
  for (const std::string& id : ids) children.push_back({{"name", id}, {"type", "child<x>"}});
  peer.ExpectCommand("query-status")
      .Reply({{"status", "running"}, {"running", true}})
      .ExpectCommand("qom-list", {{"path", "/machine/peripheral"}})
      .Reply(children);
}

inline void ExpectBackendQueries(FakeQmpPeer& peer, const std::vector<std::string>& nodes = {},
                                 const std::vector<std::string>& objects = {},
                                 const std::vector<std::string>& chardevs = {}) {
  Json n = Json::array(), o = Json::array(), c = Json::array();
  for (const std::string& x : nodes) n.push_back({{"node-name", x}});
  for (const std::string& x : objects) o.push_back({{"name", x}, {"type", "child<x>"}});
  for (const std::string& x : chardevs) c.push_back({{"label", x}, {"filename", "unix:"}});
  peer.ExpectCommand("query-named-block-nodes")
      .Reply(n)
      .ExpectCommand("qom-list", {{"path", "/objects"}})
      .Reply(o)
      .ExpectCommand("query-chardev")
      .Reply(c);
}

}  // namespace runvm::qemu

#endif  // RUNVM_TESTS_UNIT_HYPERVISOR_QEMU_HOTPLUG_FIXTURE_H_
