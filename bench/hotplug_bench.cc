// bench/run hotplug: each hot-plug through runvm against the raw QMP sequence on the same VM
// (the floor: the same commands and arguments written by hand on the same QMP socket, with the
// host-side work the kind needs, e.g. creating the tap), and the time until the guest sees the
// device, both ways. TCG, guest from guest/build.sh; each run is undone before the next where
// the guest allows it (memory is not unplugged: each run adds a block).
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/report.h"
#include "devices/tap.h"
#include "hypervisor/qemu/hotplug.h"
#include "hypervisor/qemu/vm.h"
#include "hypervisor/qmp/client.h"
#include "tests/testing/guest_shell.h"
#include "tests/testing/temp_dir.h"

namespace {

using namespace runvm;
using Json = nlohmann::json;

double Ms(absl::Time t0) { return absl::ToDoubleMilliseconds(absl::Now() - t0); }
absl::Time Soon() { return absl::Now() + absl::Seconds(60); }

[[noreturn]] void Die(const absl::Status& st, const char* what) {
  std::fprintf(stderr, "hotplug_bench: %s: %s\n", what, std::string(st.message()).c_str());
  std::exit(1);
}
template <typename T>
T Must(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) Die(v.status(), what);
  return *std::move(v);
}
void Must(const absl::Status& st, const char* what) {
  if (!st.ok()) Die(st, what);
}

struct Bench {
  qemu::RunningVm vm;
  std::unique_ptr<qmp::Client> qmp;
  std::optional<testing::GuestShell> shell;
  std::optional<qemu::Hotplug> hp;

  // Waits in the guest until `condition` (a shell test) holds.
  void GuestSees(const std::string& condition) {
    Must(shell->Run("until " + condition + "; do :; done", Soon()).status(), condition.c_str());
  }
  void Raw(const std::string& command, const Json& args) {
    Must(qmp->Execute(command, args, Soon()).status(), command.c_str());
  }
  void RawUnplug(const std::string& id) {
    auto w = qmp->ExpectEvent("DEVICE_DELETED", {{"device", id}});
    Raw("device_del", {{"id", id}});
    Must(qmp->WaitEvent(w, Soon()).status(), "DEVICE_DELETED");
  }
};

struct Figure {
  std::vector<double> runvm, floor, runvm_seen, floor_seen;
  void Emit(const char* kind, int runs) {
    bench::Emit("hotplug", absl::StrCat(kind, " plug").c_str(), bench::Median(runvm),
                bench::Median(floor), runs);
    bench::Emit("hotplug", absl::StrCat(kind, " plug until the guest sees it").c_str(),
                bench::Median(runvm_seen), bench::Median(floor_seen), runs);
  }
};

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 10;
  testing::TempDir dir;
  config::Config c;
  const std::string guest = RUNVM_GUEST_DIR;
  c.hypervisor.kernel = guest + "/vmlinuz";
  c.hypervisor.initrd = guest + "/initrd.img";
  c.hypervisor.default_memory = 512;
  c.hypervisor.memory_slots = 4 * runs + 2;
  c.hypervisor.shared_fs = "none";
  c.ApplyClamps({.cpus = 2});
  const qemu::VmSpec spec{.config = c.hypervisor,
                          .sandbox_id = "hotplug-bench",
                          .accelerator = "tcg",
                          .host_memory_mib = 1024 * runs + 1024,
                          .socket_base = dir.path() + "/vm"};
  Bench b{.vm = Must(qemu::StartVm(spec), "start")};
  b.shell.emplace(Must(testing::GuestShell::Connect(b.vm.agent_socket(), Soon()), "guest"));
  b.qmp = Must(qmp::Client::Connect(b.vm.qmp_socket(), Soon()), "qmp");
  b.hp.emplace(*b.qmp, b.vm);
  const std::string disk = dir.Write("disk.img", "");
  if (::truncate(disk.c_str(), 16 << 20) != 0) return 1;
  const std::string pci = "/sys/bus/pci/devices/0000:00:02.0/0000:*:01.0";

  Figure f;
  for (int i = 0; i < runs; ++i) {
    absl::Time t0 = absl::Now();
    qemu::PluggedDevice d = Must(b.hp->AddDisk({.path = disk, .driver = "virtio-blk"}), "disk");
    f.runvm.push_back(Ms(t0));
    b.GuestSees("ls " + pci + "/virtio*/block/vd* >/dev/null 2>&1");
    f.runvm_seen.push_back(Ms(t0));
    Must(b.hp->Remove(d.id), "unplug");
    b.GuestSees("! ls " + pci + " >/dev/null 2>&1");

    const std::string id = absl::StrCat("raw", i), node = "drive-" + id;
    t0 = absl::Now();
    b.Raw("blockdev-add", {{"driver", "raw"},
                           {"node-name", node},
                           {"read-only", false},
                           {"file", {{"driver", "file"}, {"filename", disk}}}});
    b.Raw("device_add", {{"driver", "virtio-blk-pci"},
                         {"id", id},
                         {"drive", node},
                         {"bus", "pci-bridge-0"},
                         {"addr", "01"},
                         {"serial", id}});
    f.floor.push_back(Ms(t0));
    b.GuestSees("ls " + pci + "/virtio*/block/vd* >/dev/null 2>&1");
    f.floor_seen.push_back(Ms(t0));
    b.RawUnplug(id);
    b.Raw("blockdev-del", {{"node-name", node}});
    b.GuestSees("! ls " + pci + " >/dev/null 2>&1");
  }
  f.Emit("disk", runs);

  f = {};
  for (int i = 0; i < runs; ++i) {
    const std::string mac = absl::StrCat("02:00:00:00:01:", i < 10 ? "0" : "", i);
    absl::Time t0 = absl::Now();
    qemu::PluggedDevice d =
        Must(b.hp->AddNic({.tap_name = absl::StrCat("rvb", i), .mac = mac}), "nic");
    f.runvm.push_back(Ms(t0));
    b.GuestSees("grep -q " + mac + " /sys/class/net/*/address");
    f.runvm_seen.push_back(Ms(t0));
    Must(b.hp->Remove(d.id), "unplug nic");

    const std::string id = absl::StrCat("rawnet", i),
                      raw_mac = absl::StrCat(mac.substr(0, 15), "2", i % 10);
    t0 = absl::Now();
    devices::Tap tap = Must(devices::CreateTap("", absl::StrCat("rvr", i), 1), "tap");
    Must(b.qmp->GetFd("fd-" + id, std::move(tap.queues[0]), Soon()), "getfd");
    b.Raw("netdev_add", {{"type", "tap"}, {"id", "nd-" + id}, {"fds", "fd-" + id}});
    b.Raw("device_add", {{"driver", "virtio-net-pci"},
                         {"id", id},
                         {"netdev", "nd-" + id},
                         {"mac", raw_mac},
                         {"bus", "pci-bridge-0"},
                         {"addr", "01"},
                         {"mq", true},
                         {"vectors", 4}});
    f.floor.push_back(Ms(t0));
    b.GuestSees("grep -q " + raw_mac + " /sys/class/net/*/address");
    f.floor_seen.push_back(Ms(t0));
    b.RawUnplug(id);
    b.Raw("netdev_del", {{"id", "nd-" + id}});
  }
  f.Emit("NIC", runs);

  // Under TCG runvm never unplugs a vCPU (QEMU 7.2 crashes on the next plug), and this host
  // allows one hot-pluggable vCPU: each sample gets a VM of its own.
  f = {};
  const int cpu_runs = std::min(runs, 3);
  for (int i = 0; i < cpu_runs; ++i) {
    for (bool raw : {false, true}) {
      qemu::VmSpec cpu_spec = spec;
      cpu_spec.sandbox_id = "hotplug-bench-cpu";
      Bench v{.vm = Must(qemu::StartVm(cpu_spec), "start")};
      v.shell.emplace(Must(testing::GuestShell::Connect(v.vm.agent_socket(), Soon()), "guest"));
      v.qmp = Must(qmp::Client::Connect(v.vm.qmp_socket(), Soon()), "qmp");
      v.hp.emplace(*v.qmp, v.vm);
      absl::Time t0 = absl::Now();
      if (raw) {
        Json cpus = Must(v.qmp->Execute("query-hotpluggable-cpus", nullptr, Soon()), "query");
        Json args = {{"driver", cpus[0]["type"]}, {"id", "rawcpu"}};
        args.update(cpus[0]["props"]);
        v.Raw("device_add", args);
      } else {
        Must(v.hp->AddVcpus(1), "vcpu");
      }
      (raw ? f.floor : f.runvm).push_back(Ms(t0));
      v.GuestSees("grep -qx 0-1 /sys/devices/system/cpu/online");
      (raw ? f.floor_seen : f.runvm_seen).push_back(Ms(t0));
      v.hp.reset();
      v.qmp.reset();
      v.shell.reset();
      Must(qemu::StopVm(v.vm), "stop");
    }
  }
  f.Emit("vCPU", cpu_runs);

  f = {};
  auto mem_kib = [&] {
    return b.shell->Run("awk '/^MemTotal/{print $2}' /proc/meminfo", Soon())->output;
  };
  for (int i = 0; i < runs; ++i) {
    std::string before = mem_kib();
    absl::Time t0 = absl::Now();
    Must(b.hp->AddMemory(128), "memory");
    f.runvm.push_back(Ms(t0));
    b.GuestSees("[ $(awk '/^MemTotal/{print $2}' /proc/meminfo) -gt " + before + " ]");
    f.runvm_seen.push_back(Ms(t0));

    before = mem_kib();
    const std::string id = absl::StrCat("rawdimm", i);
    t0 = absl::Now();
    Json devs = Must(b.qmp->Execute("query-memory-devices", nullptr, Soon()), "query");
    b.Raw("object-add",
          {{"qom-type", "memory-backend-ram"}, {"id", "mem-" + id}, {"size", 128 << 20}});
    b.Raw("device_add", {{"driver", "pc-dimm"},
                         {"id", id},
                         {"memdev", "mem-" + id},
                         {"slot", static_cast<int>(devs.size())}});
    f.floor.push_back(Ms(t0));
    b.GuestSees("[ $(awk '/^MemTotal/{print $2}' /proc/meminfo) -gt " + before + " ]");
    f.floor_seen.push_back(Ms(t0));
  }
  f.Emit("memory", runs);

  b.hp.reset();
  b.qmp.reset();
  b.shell.reset();
  Must(qemu::StopVm(b.vm), "stop");
  return 0;
}
