#include "hypervisor/qemu/hotplug.h"

#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/failpoint.h"
#include "base/status.h"
#include "devices/block.h"
#include "devices/tap.h"
#include "devices/vfio.h"
#include "hypervisor/qemu/command_line.h"
#include "hypervisor/qmp/client.h"

namespace runvm::qemu {

using Json = nlohmann::json;

const PluggedDevice* HotplugState::Find(const std::string& id) const {
  auto it = std::find_if(devices.begin(), devices.end(),
                         [&](const PluggedDevice& d) { return d.id == id; });
  return it == devices.end() ? nullptr : &*it;
}

PluggedDevice* HotplugState::Find(const std::string& id) {
  return const_cast<PluggedDevice*>(std::as_const(*this).Find(id));
}

namespace {

constexpr int kScsiIndexLimit = 256 * 256;  // scsi-id 0..255, lun 0..255
// ACPI _OST status codes that are not a refusal: success, and "ejection in progress".
constexpr int kOstSuccess = 0;
constexpr int kOstEjectInProgress = 0x84;
constexpr int kOstSourceEject = 3;
// How often a long unplug wait asks QEMU whether the device is gone.
constexpr absl::Duration kUnplugRecheck = absl::Seconds(1);
constexpr int64_t kMiB = 1 << 20;
// A device that is gone can hold its block node a little longer (a SCSI disk until the guest
// has processed the unplug); deleting the node is retried for this long.
constexpr absl::Duration kBackendRelease = absl::Seconds(3);
constexpr int64_t kNvdimmAlignBytes = 2 * kMiB;

// The prefixes of the device ids NextId hands out ("blk3", "cpu7"), and of the backends named
// after them ("drive-blk3", "mem-dimm2", "char-vublk5").
constexpr absl::string_view kIdPrefixes[] = {"sd",   "blk", "nv",   "vublk",     "net",
                                             "vfio", "cpu", "dimm", "virtiomem", "port"};
constexpr absl::string_view kBackendPrefixes[] = {"drive-", "mem-", "char-"};

// The index of a hot-plug device id, or -1 for any other id (cold-plugged devices, bridges).
int64_t HotplugIndex(absl::string_view id) {
  for (absl::string_view prefix : kIdPrefixes) {
    absl::string_view rest = id;
    int64_t n;
    if (absl::ConsumePrefix(&rest, prefix) && !rest.empty() &&
        std::all_of(rest.begin(), rest.end(), absl::ascii_isdigit) && absl::SimpleAtoi(rest, &n)) {
      return n;
    }
  }
  return -1;
}

bool IsHotplugBackend(absl::string_view name) {
  for (absl::string_view prefix : kBackendPrefixes) {
    if (absl::ConsumePrefix(&name, prefix)) return HotplugIndex(name) >= 0;
  }
  return false;
}

// A delete whose target QEMU no longer has: what a rollback after a crash often finds.
bool AlreadyGone(const absl::Status& st) {
  return qmp::HasErrorClass(st, "DeviceNotFound") || absl::StrContains(st.message(), "not found") ||
         absl::StrContains(st.message(), "Failed to find node");
}

// QEMU refuses a second device_del while the guest is still ejecting the device.
bool UnplugAlreadyRequested(const absl::Status& st) {
  return absl::StrContains(st.message(), "already in the process of unplug");
}

std::string Hex2(int v) { return absl::StrCat(absl::Hex(v, absl::kZeroPad2)); }

int64_t JsonInt(const Json& j, const char* key, int64_t fallback = -1) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

// The object-add arguments of guest RAM: a shared file where the guest's memory must be shared
// (virtio-fs, file_mem_backend, hugepages), anonymous RAM otherwise.
Json MemoryBackend(const config::QemuConfig& c, const std::string& id, int64_t size_bytes) {
  Json backend = {{"id", id}, {"size", size_bytes}};
  if (SharesMemory(c)) {
    backend["qom-type"] = "memory-backend-file";
    backend["mem-path"] = MemoryPath(c);
    backend["share"] = true;
  } else {
    backend["qom-type"] = "memory-backend-ram";
  }
  return backend;
}

}  // namespace

// The undo log of one operation: what each successful step created, undone in reverse order
// when a later step fails. Undo is skipped when the QMP session is unusable (a timed-out command
// may still be running in QEMU); the error then says what QEMU may still hold.
class Hotplug::Steps {
 public:
  explicit Steps(Hotplug& hp) : hp_(hp) {}
  void Add(std::string what, std::function<absl::Status()> undo) {
    undo_.emplace_back(std::move(what), std::move(undo));
  }
  // Returns `cause`, with what could not be undone appended.
  absl::Status Undo(absl::Status cause) {
    std::vector<std::string> left;
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
      if (!hp_.qmp_.health().ok()) {
        left.push_back(it->first);
        continue;
      }
      absl::Status st = it->second();
      if (!st.ok()) left.push_back(absl::StrCat(it->first, " (", st.message(), ")"));
    }
    undo_.clear();
    // With everything undone the intent is settled; otherwise it stays for Reconcile.
    if (left.empty() && hp_.qmp_.health().ok()) return hp_.Settle(cause);
    return absl::Status(
        cause.code(),
        absl::StrCat(cause.message(), left.empty() ? "" : "; not rolled back, ",
                     left.empty() ? "" : "QEMU may still hold: ", absl::StrJoin(left, ", "),
                     "; the intent stays recorded and the next invocation "
                     "reconciles it with QEMU"));
  }

 private:
  Hotplug& hp_;
  std::vector<std::pair<std::string, std::function<absl::Status()>>> undo_;
};

Hotplug::Hotplug(qmp::Client& qmp, RunningVm& vm, HotplugOptions options)
    : qmp_(qmp), vm_(vm), options_(std::move(options)) {}

absl::Status Hotplug::Checkpoint() {
  if (!options_.checkpoint) return absl::OkStatus();
  return Annotate(options_.checkpoint(), absl::StrCat("sandbox ", vm_.sandbox_id, ": save"));
}

absl::Status Hotplug::Intend(const char* op, absl::string_view step, const PluggedDevice& device) {
  const std::optional<HotplugIntent>& pending = vm_.hotplug.intent;
  if (pending && (pending->op != op || pending->device.id != device.id)) {
    return absl::FailedPreconditionError(absl::StrCat(device.id, ": the interrupted ", pending->op,
                                                      " of ", pending->device.id, " (at ",
                                                      pending->step, ") is not reconciled yet"));
  }
  vm_.hotplug.intent = HotplugIntent{.op = op, .step = std::string(step), .device = device};
  RETURN_IF_ERROR(Checkpoint());
  if (op == absl::string_view(kIntentPlug)) {
    RUNVM_FAILPOINT("hotplug.plug.after-intent");
  } else if (op == absl::string_view(kIntentUnplug)) {
    RUNVM_FAILPOINT("hotplug.unplug.after-intent");
  } else {
    RUNVM_FAILPOINT("hotplug.resize.after-intent");
  }
  return absl::OkStatus();
}

absl::Status Hotplug::Settle(absl::Status result) {
  if (!vm_.hotplug.intent) return result;
  const std::string id = vm_.hotplug.intent->device.id;
  vm_.hotplug.intent.reset();
  absl::Status saved = Checkpoint();
  if (saved.ok()) return result;
  if (result.ok()) {
    return Annotate(saved, absl::StrCat(id,
                                        ": done in QEMU, but not recorded; the next invocation "
                                        "reconciles the record with QEMU"));
  }
  return absl::Status(result.code(), absl::StrCat(result.message(), "; and ", saved.message()));
}

absl::Status Hotplug::AddBackend(Steps& steps, const PluggedDevice& device,
                                 absl::string_view command, const Json& args, std::string what,
                                 absl::string_view undo_command, Json undo_args) {
  absl::Status st = Intend(kIntentPlug, command, device);
  if (st.ok()) st = Run(device.id, command, args).status();
  if (!st.ok()) return steps.Undo(st);
  steps.Add(std::move(what),
            [this, id = device.id, undo = std::string(undo_command),
             undo_args = std::move(undo_args)] { return Run(id, undo, undo_args).status(); });
  RUNVM_FAILPOINT("hotplug.plug.after-backend");
  return absl::OkStatus();
}

absl::StatusOr<Json> Hotplug::Run(absl::string_view device, absl::string_view command,
                                  const Json& args) {
  absl::StatusOr<Json> r = qmp_.Execute(command, args, Deadline());
  if (!r.ok()) return Annotate(r.status(), absl::StrCat(device, ": ", command));
  return r;
}

std::string Hotplug::NextId(absl::string_view prefix) {
  std::string id;
  do {
    id = absl::StrCat(prefix, vm_.hotplug.next_index++);
  } while (vm_.hotplug.Find(id) != nullptr);
  return id;
}

absl::StatusOr<Hotplug::PciPlace> Hotplug::FreeBridgeSlot(absl::string_view device) const {
  for (int64_t b = 0; b < vm_.config.default_bridges; ++b) {
    const std::string bus = BridgeId(b);
    for (int slot = kFirstBridgeDeviceSlot; slot <= kLastBridgeDeviceSlot; ++slot) {
      bool used =
          std::any_of(vm_.hotplug.devices.begin(), vm_.hotplug.devices.end(),
                      [&](const PluggedDevice& d) { return d.bus == bus && d.slot == slot; });
      if (!used) return PciPlace{bus, slot, Hex2(BridgeSlot(b)) + "/" + Hex2(slot)};
    }
  }
  return absl::ResourceExhaustedError(
      absl::StrCat(device, ": no free slot on the ", vm_.config.default_bridges, " PCI bridge(s) (",
                   kLastBridgeDeviceSlot - kFirstBridgeDeviceSlot + 1,
                   " slots each); raise default_bridges or unplug a device"));
}

absl::StatusOr<Hotplug::PciPlace> Hotplug::FreeRootPort(absl::string_view device) const {
  if (vm_.config.pcie_root_port <= 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        device,
        ": needs a PCIe root port on q35, but pcie_root_port is 0; set it to the number "
        "of devices to hot-plug on the root bus"));
  }
  for (int64_t i = 0; i < vm_.config.pcie_root_port; ++i) {
    const std::string bus = RootPortId(i);
    bool used = std::any_of(vm_.hotplug.devices.begin(), vm_.hotplug.devices.end(),
                            [&](const PluggedDevice& d) { return d.bus == bus; });
    if (!used) {
      return PciPlace{bus, 0, Hex2(RootPortSlot(vm_.config, i)) + "/00"};
    }
  }
  return absl::ResourceExhaustedError(
      absl::StrCat(device, ": all ", vm_.config.pcie_root_port, " PCIe root ports are in use"));
}

absl::StatusOr<PluggedDevice> Hotplug::Commit(PluggedDevice device, const Json& args,
                                              Steps& steps) {
  absl::Status st = Intend(kIntentPlug, "device_add", device);
  if (st.ok()) st = Run(device.id, "device_add", args).status();
  if (!st.ok()) return steps.Undo(st);
  RUNVM_FAILPOINT("hotplug.plug.after-device-add");
  device.fd_names.clear();  // whatever fds the intent named, the backend has taken them
  vm_.hotplug.devices.push_back(device);
  RETURN_IF_ERROR(Settle());
  return device;
}

absl::StatusOr<PluggedDevice> Hotplug::AddDisk(const DiskRequest& request) {
  const std::string& driver =
      request.driver.empty() ? vm_.config.block_device_driver : request.driver;
  if (driver == kKindNvdimm) return AddNvdimm(request);
  if (driver == kKindVhostUserBlk) return AddVhostUserBlk(request);
  if (driver == kKindVirtioBlk || driver == kKindScsi) return AddBlockDevice(request, driver);
  return absl::InvalidArgumentError(
      absl::StrCat("disk ", request.path, ": driver \"", driver,
                   "\" is not one of virtio-blk, virtio-scsi, nvdimm, vhost-user-blk"));
}

absl::StatusOr<PluggedDevice> Hotplug::AddBlockDevice(const DiskRequest& request,
                                                      const std::string& driver) {
  ASSIGN_OR_RETURN(devices::HostDisk disk, devices::InspectDisk(request.path));
  const bool scsi = driver == kKindScsi;
  if (scsi && vm_.config.block_device_driver != kKindScsi) {
    return absl::FailedPreconditionError(
        absl::StrCat("disk ", request.path,
                     ": this sandbox has no virtio-scsi controller "
                     "(block_device_driver is ",
                     vm_.config.block_device_driver, ")"));
  }
  RETURN_IF_ERROR(FinishPendingUnplugs());
  PluggedDevice d{.kind = driver, .source = disk.path, .size_bytes = disk.size_bytes};
  if (scsi) {
    std::set<int> used;
    for (const PluggedDevice& o : vm_.hotplug.devices) {
      if (o.kind == kKindScsi) used.insert(o.slot);
    }
    int index = 0;
    while (used.count(index) != 0) ++index;
    if (index >= kScsiIndexLimit) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "disk ", request.path, ": all ", kScsiIndexLimit, " SCSI targets are in use"));
    }
    d.id = NextId("sd");
    d.bus = "scsi0.0";
    d.slot = index;
    d.guest_address = absl::StrCat(index / 256, ":", index % 256);
  } else {
    d.id = NextId("blk");
    ASSIGN_OR_RETURN(PciPlace place, FreeBridgeSlot(absl::StrCat("disk ", request.path)));
    d.bus = place.bus;
    d.slot = place.slot;
    d.guest_address = place.guest_address;
  }
  d.node_name = "drive-" + d.id;

  Json node = {{"driver", "raw"},
               {"node-name", d.node_name},
               {"read-only", request.read_only},
               {"file", {{"driver", disk.driver()}, {"filename", disk.path}}}};
  if (vm_.config.block_device_cache_set) {
    node["cache"] = {{"direct", vm_.config.block_device_cache_direct},
                     {"no-flush", vm_.config.block_device_cache_noflush}};
  }
  Steps steps(*this);
  RETURN_IF_ERROR(AddBackend(steps, d, "blockdev-add", node, "block node " + d.node_name,
                             "blockdev-del", {{"node-name", d.node_name}}));

  Json dev = {{"id", d.id}, {"drive", d.node_name}, {"bus", d.bus}, {"serial", d.id}};
  if (scsi) {
    dev["driver"] = "scsi-hd";
    dev["channel"] = 0;
    dev["scsi-id"] = d.slot / 256;
    dev["lun"] = d.slot % 256;
  } else {
    dev["driver"] = "virtio-blk-pci";
    dev["addr"] = Hex2(d.slot);
  }
  return Commit(std::move(d), dev, steps);
}

absl::StatusOr<PluggedDevice> Hotplug::AddNvdimm(const DiskRequest& request) {
  ASSIGN_OR_RETURN(devices::HostDisk disk, devices::InspectDisk(request.path));
  const std::string what = absl::StrCat("disk ", request.path);
  if (!ImageOnNvdimm(vm_.config) && vm_.config.block_device_driver != kKindNvdimm) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": the sandbox's machine has no NVDIMM support (block_device_driver is ",
                     vm_.config.block_device_driver, " and the boot image is not on an NVDIMM)"));
  }
  if (disk.size_bytes <= 0 || disk.size_bytes % kNvdimmAlignBytes != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": ", disk.size_bytes,
        " bytes is not a positive multiple of 2 MiB, which the guest needs to probe an NVDIMM"));
  }
  RETURN_IF_ERROR(FinishPendingUnplugs());
  ASSIGN_OR_RETURN(Json memdevs, Run(what, "query-memory-devices", nullptr));
  if (static_cast<int64_t>(memdevs.size()) >= vm_.config.memory_slots) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, ": all ", vm_.config.memory_slots, " memory slots are in use (NVDIMMs take one)"));
  }
  int index = ImageOnNvdimm(vm_.config) ? 1 : 0;  // QEMU cannot unplug NVDIMMs: indices only grow
  for (const PluggedDevice& o : vm_.hotplug.devices) {
    if (o.kind == kKindNvdimm) index = std::max(index, o.slot + 1);
  }
  PluggedDevice d{.id = NextId("nv"),
                  .kind = kKindNvdimm,
                  .slot = index,
                  .guest_address = absl::StrCat("/dev/pmem", index),
                  .source = disk.path,
                  .size_bytes = disk.size_bytes};
  d.object = "mem-" + d.id;
  Steps steps(*this);
  RETURN_IF_ERROR(AddBackend(steps, d, "object-add",
                             {{"qom-type", "memory-backend-file"},
                              {"id", d.object},
                              {"mem-path", disk.path},
                              {"size", disk.size_bytes},
                              {"share", !request.read_only},
                              {"readonly", request.read_only}},
                             "memory backend " + d.object, "object-del", {{"id", d.object}}));
  Json dev = {{"driver", "nvdimm"}, {"id", d.id}, {"memdev", d.object}};
  if (request.read_only) dev["unarmed"] = true;
  return Commit(std::move(d), dev, steps);
}

absl::StatusOr<PluggedDevice> Hotplug::AddVhostUserBlk(const DiskRequest& request) {
  const std::string what = absl::StrCat("vhost-user-blk disk ", request.path);
  if (!vm_.config.enable_hugepages) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, ": vhost-user needs guest memory the backend can map; enable_hugepages is off"));
  }
  struct stat st {};
  if (::stat(request.path.c_str(), &st) != 0) return ErrnoError(what);
  if (!S_ISSOCK(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": is not a unix socket"));
  }
  RETURN_IF_ERROR(FinishPendingUnplugs());
  PluggedDevice d{.id = NextId("vublk"), .kind = kKindVhostUserBlk, .source = request.path};
  ASSIGN_OR_RETURN(PciPlace place, FreeBridgeSlot(what));
  d.bus = place.bus;
  d.slot = place.slot;
  d.guest_address = place.guest_address;
  d.chardev = "char-" + d.id;
  Steps steps(*this);
  Json backend = {
      {"type", "socket"},
      {"data",
       {{"addr", {{"type", "unix"}, {"data", {{"path", request.path}}}}}, {"server", false}}}};
  RETURN_IF_ERROR(AddBackend(steps, d, "chardev-add", {{"id", d.chardev}, {"backend", backend}},
                             "chardev " + d.chardev, "chardev-remove", {{"id", d.chardev}}));
  return Commit(d,
                {{"driver", "vhost-user-blk-pci"},
                 {"id", d.id},
                 {"chardev", d.chardev},
                 {"bus", d.bus},
                 {"addr", Hex2(d.slot)}},
                steps);
}

absl::StatusOr<PluggedDevice> Hotplug::AddNic(const NicRequest& request) {
  const std::string what = absl::StrCat("NIC ", request.tap_name);
  RETURN_IF_ERROR(Annotate(devices::ParseMac(request.mac).status(), what));
  const int queues =
      request.queues > 0 ? request.queues : static_cast<int>(vm_.config.default_vcpus);
  RETURN_IF_ERROR(FinishPendingUnplugs());
  ASSIGN_OR_RETURN(PciPlace place, FreeBridgeSlot(what));
  PluggedDevice d{.id = NextId("net"),
                  .kind = kKindNet,
                  .bus = place.bus,
                  .slot = place.slot,
                  .guest_address = place.guest_address,
                  .source = request.tap_name};
  d.netdev = "netdev-" + d.id;
  // Host side first: the tap vanishes with its last fd, so a failure below needs no cleanup
  // beyond the named fds QEMU holds until netdev_add takes them.
  ASSIGN_OR_RETURN(devices::Tap tap, devices::CreateTap(request.netns, request.tap_name, queues));
  Steps steps(*this);
  auto netdev_took_fds = std::make_shared<bool>(false);
  std::vector<std::string> fds, vhostfds;
  for (size_t q = 0; q < tap.queues.size(); ++q) fds.push_back(absl::StrCat("fd-", d.id, "-", q));
  for (size_t q = 0; q < tap.vhost.size(); ++q) {
    vhostfds.push_back(absl::StrCat("vhostfd-", d.id, "-", q));
  }
  // The intent names every fd before the first is handed over, so a crash leaks none.
  d.fd_names = fds;
  d.fd_names.insert(d.fd_names.end(), vhostfds.begin(), vhostfds.end());
  absl::Status intended = Intend(kIntentPlug, "getfd", d);
  if (!intended.ok()) return steps.Undo(intended);
  auto hand_over = [&](std::vector<Fd>& from, const std::vector<std::string>& names) {
    for (size_t q = 0; q < from.size(); ++q) {
      const std::string& name = names[q];
      absl::Status st = qmp_.GetFd(name, std::move(from[q]), Deadline());
      if (!st.ok()) return steps.Undo(Annotate(st, absl::StrCat(d.id, ": getfd ", name)));
      steps.Add("monitor fd " + name, [this, name, id = d.id, netdev_took_fds] {
        if (*netdev_took_fds) return absl::OkStatus();
        return Annotate(qmp_.CloseFd(name, Deadline()), id + ": closefd");
      });
      RUNVM_FAILPOINT("hotplug.plug.after-getfd");
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(hand_over(tap.queues, fds));
  RETURN_IF_ERROR(hand_over(tap.vhost, vhostfds));
  Json netdev = {{"type", "tap"}, {"id", d.netdev}, {"fds", absl::StrJoin(fds, ":")}};
  if (!vhostfds.empty()) {
    netdev["vhost"] = true;
    netdev["vhostfds"] = absl::StrJoin(vhostfds, ":");
  }
  absl::Status added = AddBackend(steps, d, "netdev_add", netdev, "netdev " + d.netdev,
                                  "netdev_del", {{"id", d.netdev}});
  if (!added.ok()) return added;
  *netdev_took_fds = true;
  return Commit(d,
                {{"driver", "virtio-net-pci"},
                 {"id", d.id},
                 {"netdev", d.netdev},
                 {"mac", request.mac},
                 {"bus", d.bus},
                 {"addr", Hex2(d.slot)},
                 {"mq", true},
                 {"vectors", 2 * queues + 2}},
                steps);
}

absl::StatusOr<PluggedDevice> Hotplug::AddSerialPort(const std::string& name) {
  const std::string what = absl::StrCat("serial port ", name);
  if (name.empty() || name.size() > 64 || name == kAgentPortName) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a usable port name"));
  }
  RETURN_IF_ERROR(FinishPendingUnplugs());
  std::set<int> used;
  for (const PluggedDevice& d : vm_.hotplug.devices) {
    if (d.kind != kKindSerialPort) continue;
    if (d.guest_address == name) {
      return absl::AlreadyExistsError(absl::StrCat(what, ": already plugged as ", d.id));
    }
    used.insert(d.slot);
  }
  // Port 0 is the console's, 1 the agent's.
  int nr = 2;
  while (used.count(nr) != 0) ++nr;
  if (nr >= kSerialMaxPorts) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": all ", kSerialMaxPorts - 2, " serial ports are in use"));
  }
  PluggedDevice d{.id = NextId("port"),
                  .kind = kKindSerialPort,
                  .bus = "serial0.0",
                  .slot = nr,
                  .guest_address = name};
  d.source = absl::StrCat(vm_.run_dir, "/", d.id, ".sock");
  d.chardev = "char-" + d.id;
  Steps steps(*this);
  Json backend = {{"type", "socket"},
                  {"data",
                   {{"addr", {{"type", "unix"}, {"data", {{"path", d.source}}}}},
                    {"server", true},
                    {"wait", false}}}};
  RETURN_IF_ERROR(AddBackend(steps, d, "chardev-add", {{"id", d.chardev}, {"backend", backend}},
                             "chardev " + d.chardev, "chardev-remove", {{"id", d.chardev}}));
  return Commit(d,
                {{"driver", "virtserialport"},
                 {"id", d.id},
                 {"bus", d.bus},
                 {"nr", nr},
                 {"chardev", d.chardev},
                 {"name", name}},
                steps);
}

absl::StatusOr<std::vector<PluggedDevice>> Hotplug::AddVfio(const std::string& device) {
  ASSIGN_OR_RETURN(devices::VfioGroup group, devices::DiscoverVfio(options_.sysfs_root, device));
  RETURN_IF_ERROR(FinishPendingUnplugs());
  const bool on_root = vm_.config.hotplug_vfio_on_root_bus;
  const bool q35 = vm_.config.machine_type == "q35";
  Steps steps(*this);
  std::vector<PluggedDevice> added;
  for (const devices::VfioFunction& f : group.functions) {
    const std::string what = absl::StrCat("VFIO device ", f.name);
    PluggedDevice d{.kind = kKindVfio, .source = f.name};
    absl::StatusOr<PciPlace> place =
        !on_root ? FreeBridgeSlot(what)
        : q35    ? FreeRootPort(what)
                 : absl::StatusOr<PciPlace>(PciPlace{RootBus(vm_.config), -1, ""});
    if (!place.ok()) return steps.Undo(place.status());
    d.id = NextId("vfio");
    d.bus = place->bus;
    d.slot = place->slot;
    d.guest_address = place->guest_address;
    Json args = {{"driver", "vfio-pci"}, {"id", d.id}, {"bus", d.bus}};
    if (f.is_mdev) {
      args["sysfsdev"] = f.sysfsdev;
    } else {
      args["host"] = f.name;
    }
    if (d.slot >= 0 && !absl::StartsWith(d.bus, "rp")) args["addr"] = Hex2(d.slot);
    absl::StatusOr<PluggedDevice> plugged = Commit(d, args, steps);
    if (!plugged.ok()) return plugged.status();  // Commit undid the earlier functions
    steps.Add("VFIO device " + d.id, [this, id = d.id]() -> absl::Status {
      PluggedDevice* p = vm_.hotplug.Find(id);
      if (p == nullptr) return absl::OkStatus();
      RETURN_IF_ERROR(DeleteDevice(*p));
      return Release(id);
    });
    added.push_back(*std::move(plugged));
  }
  return added;
}

absl::StatusOr<VcpuResult> Hotplug::AddVcpus(int count) {
  if (count <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("vCPUs: cannot add ", count));
  }
  RETURN_IF_ERROR(FinishPendingUnplugs());
  ASSIGN_OR_RETURN(Json slots, Run("vCPUs", "query-hotpluggable-cpus", nullptr));
  std::vector<Json> free;
  int online = 0;
  for (const Json& s : slots) {
    if (s.contains("qom-path")) {
      online += static_cast<int>(JsonInt(s, "vcpus-count", 1));
    } else {
      free.push_back(s);
    }
  }
  // QEMU lists the highest ids first; the guest onlines the lowest free ids far faster.
  auto key = [](const Json& s) {
    const Json& p = s.value("props", Json::object());
    return std::make_tuple(JsonInt(p, "node-id"), JsonInt(p, "socket-id"), JsonInt(p, "die-id"),
                           JsonInt(p, "core-id"), JsonInt(p, "thread-id"));
  };
  std::sort(free.begin(), free.end(),
            [&](const Json& a, const Json& b) { return key(a) < key(b); });
  VcpuResult result;
  const int max = static_cast<int>(vm_.config.default_maxvcpus);
  int allowed = std::min<int>({count, static_cast<int>(free.size()), std::max(0, max - online)});
  if (allowed < count) {
    result.warning = absl::StrCat("vCPUs: asked for ", count, " more, adding ", allowed, ": ",
                                  online, " of at most ", max, " (default_maxvcpus) are online");
  }
  for (int i = 0; i < allowed; ++i) {
    const Json& s = free[i];
    const Json& props = s.value("props", Json::object());
    PluggedDevice d{.id = NextId("cpu"), .kind = kKindCpu};
    d.slot = static_cast<int>(JsonInt(props, "socket-id"));
    d.guest_address =
        absl::StrCat("socket ", JsonInt(props, "socket-id", 0), " core ",
                     JsonInt(props, "core-id", 0), " thread ", JsonInt(props, "thread-id", 0));
    Json args = props;
    args["driver"] = s.value("type", "");
    args["id"] = d.id;
    Steps none(*this);
    absl::StatusOr<PluggedDevice> r = Commit(d, args, none);
    if (!r.ok()) {
      return absl::Status(
          r.status().code(),
          absl::StrCat("vCPUs: plugged ", result.ids.size(), " of ", allowed,
                       result.ids.empty() ? "" : " (" + absl::StrJoin(result.ids, ", ") + ")",
                       "; then ", r.status().message()));
    }
    result.ids.push_back(d.id);
  }
  result.online = online + static_cast<int>(result.ids.size());
  return result;
}

absl::Status Hotplug::VcpuUnplugAllowed() const {
  if (vm_.accelerator != "tcg") return absl::OkStatus();
  // Measured: QEMU 7.2 under TCG unplugs a vCPU, but segfaults when one is plugged again.
  return absl::FailedPreconditionError(
      "vCPUs: not removed: under TCG, QEMU 7.2 crashes when a vCPU is plugged again after an "
      "unplug; lower the guest's CPU quota instead");
}

absl::StatusOr<VcpuResult> Hotplug::RemoveVcpus(int count) {
  if (count <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("vCPUs: cannot remove ", count));
  }
  RETURN_IF_ERROR(VcpuUnplugAllowed());
  RETURN_IF_ERROR(FinishPendingUnplugs());
  std::vector<std::string> plugged;
  for (const PluggedDevice& d : vm_.hotplug.devices) {
    if (d.kind == kKindCpu && !d.unplug_pending) plugged.push_back(d.id);
  }
  VcpuResult result;
  int n = std::min<int>(count, static_cast<int>(plugged.size()));
  if (n < count) {
    result.warning = absl::StrCat("vCPUs: asked to remove ", count, ", removing ", n,
                                  ": boot vCPUs are never removed");
  }
  for (int i = 0; i < n; ++i) {
    const std::string id = plugged[plugged.size() - 1 - i];
    absl::Status st = Unplug(id);
    if (!st.ok()) {
      return absl::Status(
          st.code(),
          absl::StrCat("vCPUs: removed ", result.ids.size(), " of ", n,
                       result.ids.empty() ? "" : " (" + absl::StrJoin(result.ids, ", ") + ")",
                       "; then ", st.message()));
    }
    result.ids.push_back(id);
  }
  ASSIGN_OR_RETURN(Json slots, Run("vCPUs", "query-hotpluggable-cpus", nullptr));
  for (const Json& s : slots) {
    if (s.contains("qom-path")) result.online += static_cast<int>(JsonInt(s, "vcpus-count", 1));
  }
  return result;
}

int64_t Hotplug::PluggedMemoryMib() const {
  int64_t bytes = 0;
  for (const PluggedDevice& d : vm_.hotplug.devices) {
    if (d.kind == kKindDimm || d.kind == kKindVirtioMem) bytes += d.size_bytes;
  }
  return bytes / kMiB;
}

absl::StatusOr<MemoryResult> Hotplug::AddMemory(int64_t mib) {
  const int64_t block = options_.memory_block_mib > 0 ? options_.memory_block_mib : 128;
  if (mib <= 0) return absl::InvalidArgumentError(absl::StrCat("memory: cannot add ", mib, " MiB"));
  const int64_t add = (mib + block - 1) / block * block;
  const int64_t now = vm_.config.default_memory + PluggedMemoryMib();
  if (now + add > vm_.max_memory_mib) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "memory: adding ", add, " MiB (", mib, " rounded up to the ", block, " MiB block size) to ",
        now, " MiB would exceed maxmem, ", vm_.max_memory_mib, " MiB"));
  }
  RETURN_IF_ERROR(FinishPendingUnplugs());
  if (vm_.config.enable_virtio_mem) return ResizeVirtioMem(add);
  ASSIGN_OR_RETURN(Json memdevs, Run("memory", "query-memory-devices", nullptr));
  std::set<int64_t> used;
  for (const Json& m : memdevs) used.insert(JsonInt(m.value("data", Json::object()), "slot"));
  if (static_cast<int64_t>(memdevs.size()) >= vm_.config.memory_slots) {
    return absl::ResourceExhaustedError(
        absl::StrCat("memory: all ", vm_.config.memory_slots, " memory slots are in use"));
  }
  int slot = 0;
  while (used.count(slot) != 0) ++slot;
  PluggedDevice d{.id = NextId("dimm"), .kind = kKindDimm, .slot = slot, .size_bytes = add * kMiB};
  d.object = "mem-" + d.id;
  Json backend = MemoryBackend(vm_.config, d.object, d.size_bytes);
  if (vm_.config.enable_mem_prealloc) backend["prealloc"] = true;
  Steps steps(*this);
  RETURN_IF_ERROR(AddBackend(steps, d, "object-add", backend, "memory backend " + d.object,
                             "object-del", {{"id", d.object}}));
  ASSIGN_OR_RETURN(
      PluggedDevice plugged,
      Commit(d, {{"driver", "pc-dimm"}, {"id", d.id}, {"memdev", d.object}, {"slot", slot}},
             steps));
  return MemoryResult{.added_mib = add, .device_id = plugged.id};
}

absl::StatusOr<MemoryResult> Hotplug::ResizeVirtioMem(int64_t add_mib) {
  auto it = std::find_if(vm_.hotplug.devices.begin(), vm_.hotplug.devices.end(),
                         [](const PluggedDevice& d) { return d.kind == kKindVirtioMem; });
  if (it != vm_.hotplug.devices.end()) {
    PluggedDevice resized = *it;
    resized.size_bytes += add_mib * kMiB;
    RETURN_IF_ERROR(Intend(kIntentResize, "qom-set", resized));
    absl::Status st = Run(resized.id, "qom-set",
                          {{"path", "/machine/peripheral/" + resized.id},
                           {"property", "requested-size"},
                           {"value", resized.size_bytes}})
                          .status();
    // A refused resize changed nothing; one whose answer never came stays intended.
    if (!st.ok()) return qmp_.health().ok() ? Settle(st) : st;
    RUNVM_FAILPOINT("hotplug.resize.after-qom-set");
    vm_.hotplug.Find(resized.id)->size_bytes = resized.size_bytes;
    RETURN_IF_ERROR(Settle());
    return MemoryResult{.added_mib = add_mib, .device_id = resized.id};
  }
  // The first resize plugs the one virtio-mem device, its region covering what maxmem leaves
  // (less the NVDIMM headroom).
  const int64_t region = (vm_.max_memory_mib - vm_.config.default_memory - kNvdimmReserveMib) /
                         options_.memory_block_mib * options_.memory_block_mib;
  ASSIGN_OR_RETURN(PciPlace place, FreeBridgeSlot("virtio-mem"));
  PluggedDevice d{.id = NextId("virtiomem"),
                  .kind = kKindVirtioMem,
                  .bus = place.bus,
                  .slot = place.slot,
                  .guest_address = place.guest_address,
                  .size_bytes = add_mib * kMiB};
  d.object = "mem-" + d.id;
  Json backend = MemoryBackend(vm_.config, d.object, region * kMiB);
  Steps steps(*this);
  RETURN_IF_ERROR(AddBackend(steps, d, "object-add", backend, "memory backend " + d.object,
                             "object-del", {{"id", d.object}}));
  ASSIGN_OR_RETURN(PluggedDevice plugged, Commit(d,
                                                 {{"driver", "virtio-mem-pci"},
                                                  {"id", d.id},
                                                  {"memdev", d.object},
                                                  {"requested-size", d.size_bytes},
                                                  {"bus", d.bus},
                                                  {"addr", Hex2(d.slot)}},
                                                 steps));
  return MemoryResult{.added_mib = add_mib, .device_id = plugged.id};
}

absl::Status Hotplug::Remove(const std::string& id) {
  RETURN_IF_ERROR(FinishPendingUnplugs());
  PluggedDevice* d = vm_.hotplug.Find(id);
  if (d == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("device ", id, ": not plugged into sandbox ", vm_.sandbox_id));
  }
  if (d->kind == kKindCpu) RETURN_IF_ERROR(VcpuUnplugAllowed());
  if (d->kind == kKindVirtioMem) {
    return absl::FailedPreconditionError(
        absl::StrCat("device ", id, ": the virtio-mem device is resized, not unplugged"));
  }
  return Unplug(id);
}

absl::Status Hotplug::Unplug(const std::string& id) {
  RETURN_IF_ERROR(Intend(kIntentUnplug, "device_del", *vm_.hotplug.Find(id)));
  absl::Status st = DeleteDevice(*vm_.hotplug.Find(id));
  // Refused: the device stays; not in time: it is recorded as pending. Either way, settled.
  if (!st.ok()) return qmp_.health().ok() ? Settle(st) : st;
  RETURN_IF_ERROR(Intend(kIntentUnplug, "teardown", *vm_.hotplug.Find(id)));
  RUNVM_FAILPOINT("hotplug.unplug.after-device-gone");
  return Settle(Release(id));
}

absl::StatusOr<std::set<std::string>> Hotplug::PeripheralIds(absl::string_view device) {
  ASSIGN_OR_RETURN(Json children, Run(device, "qom-list", {{"path", "/machine/peripheral"}}));
  std::set<std::string> ids;
  for (const Json& c : children) ids.insert(c.value("name", ""));
  return ids;
}

absl::Status Hotplug::DeleteDevice(PluggedDevice& device) {
  const std::string id = device.id;
  using WaiterId = qmp::Client::WaiterId;
  WaiterId deleted = qmp_.ExpectEvent("DEVICE_DELETED", {{"device", id}});
  WaiterId refused = qmp_.ExpectEvent("DEVICE_UNPLUG_GUEST_ERROR", {{"device", id}});
  const Json ost_match = {{"info", {{"device", id}}}};
  // An eject report may name no device (QEMU 7.2 sends it for a CPU after the device is gone).
  const Json eject_match = {{"info", {{"source", kOstSourceEject}}}};
  WaiterId ost = qmp_.ExpectEvent("ACPI_DEVICE_OST", ost_match);
  WaiterId eject = qmp_.ExpectEvent("ACPI_DEVICE_OST", eject_match);
  auto cancel = [&] {
    for (WaiterId w : {deleted, refused, ost, eject}) qmp_.CancelEvent(w);
  };
  absl::Status sent = Run(id, "device_del", {{"id", id}}).status();
  // Asked before a crash: the guest is on it, and the wait below is all that is left.
  if (UnplugAlreadyRequested(sent)) sent = absl::OkStatus();
  if (sent.ok()) RUNVM_FAILPOINT("hotplug.unplug.after-device-del");
  if (!sent.ok()) {
    cancel();
    // Already gone (a pending unplug that finished meanwhile): nothing left to wait for.
    if (qmp::HasErrorClass(sent, "DeviceNotFound")) return absl::OkStatus();
    return sent;
  }
  const absl::Time deadline = absl::Now() + options_.unplug_timeout;
  while (true) {
    // QEMU 7.2 sends no DEVICE_DELETED for an unplugged vCPU (only for its lapic child), so the
    // wait is cut into slices and QEMU's own view, qom-list, decides between them.
    const absl::Time slice = std::min(deadline, absl::Now() + kUnplugRecheck);
    absl::StatusOr<qmp::Client::Fired> fired =
        qmp_.WaitAnyEvent({deleted, refused, ost, eject}, slice);
    bool recheck = false;
    if (!fired.ok()) {
      if (!absl::IsDeadlineExceeded(fired.status())) {
        cancel();
        return Annotate(fired.status(), id + ": waiting for DEVICE_DELETED");
      }
      recheck = true;
    } else if (fired->id == deleted) {
      cancel();
      return absl::OkStatus();
    } else if (fired->id == refused) {
      cancel();
      return absl::FailedPreconditionError(
          absl::StrCat(id,
                       ": the guest refused the unplug (DEVICE_UNPLUG_GUEST_ERROR); the "
                       "device stays plugged"));
    } else {
      const Json info = fired->event.data.value("info", Json::object());
      const int64_t status = JsonInt(info, "status", 0);
      if (info.value("device", "") == id && status != kOstSuccess &&
          status != kOstEjectInProgress) {
        cancel();
        return absl::FailedPreconditionError(
            absl::StrCat(id, ": the guest refused the unplug (ACPI _OST status 0x",
                         absl::Hex(status), "); the device stays plugged"));
      }
      recheck = JsonInt(info, "source", 0) == kOstSourceEject && status == kOstSuccess;
      WaiterId& again = fired->id == ost ? ost : eject;
      again = qmp_.ExpectEvent("ACPI_DEVICE_OST", fired->id == ost ? ost_match : eject_match);
    }
    if (recheck) {
      absl::StatusOr<std::set<std::string>> present = PeripheralIds(id);
      if (!present.ok()) {
        cancel();
        return present.status();
      }
      if (present->count(id) == 0) {
        cancel();
        return absl::OkStatus();
      }
    }
    if (absl::Now() >= deadline) {
      cancel();
      device.unplug_pending = true;
      return absl::DeadlineExceededError(
          absl::StrCat(id, ": unplug pending: the guest has not released the device within ",
                       absl::FormatDuration(options_.unplug_timeout),
                       "; it stays recorded and is finished once QEMU reports it gone"));
    }
  }
}

absl::Status Hotplug::Release(const std::string& id) {
  PluggedDevice* found = vm_.hotplug.Find(id);
  if (found == nullptr) return absl::OkStatus();
  PluggedDevice d = *found;
  // The device is gone from QEMU: forget it first, so its slot is free whatever happens below.
  vm_.hotplug.devices.erase(vm_.hotplug.devices.begin() + (found - vm_.hotplug.devices.data()));
  return Teardown(d);
}

absl::Status Hotplug::RunOnceReleased(absl::string_view device, absl::string_view command,
                                      const Json& args) {
  const absl::Time deadline = absl::Now() + kBackendRelease;
  for (;;) {
    absl::Status st = Run(device, command, args).status();
    if (st.ok() || !absl::StrContains(st.message(), "is in use") || absl::Now() >= deadline) {
      return st;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::Status Hotplug::Teardown(const PluggedDevice& d) {
  std::vector<std::string> failed;
  auto teardown = [&](const std::string& name, absl::string_view command, const Json& args) {
    if (name.empty()) return;
    absl::Status st = RunOnceReleased(d.id, command, args);
    if (!st.ok() && !AlreadyGone(st)) {
      failed.push_back(std::string(st.message()));
      return;
    }
    RUNVM_FAILPOINT("hotplug.unplug.after-backend-del");
  };
  teardown(d.node_name, "blockdev-del", {{"node-name", d.node_name}});
  teardown(d.netdev, "netdev_del", {{"id", d.netdev}});
  teardown(d.object, "object-del", {{"id", d.object}});
  teardown(d.chardev, "chardev-remove", {{"id", d.chardev}});
  for (const std::string& fd : d.fd_names) teardown(fd, "closefd", {{"fdname", fd}});
  if (failed.empty()) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat(d.id, ": unplugged, but its backends remain: ", absl::StrJoin(failed, "; ")));
}

absl::Status Hotplug::FinishPendingUnplugs() {
  bool any = std::any_of(vm_.hotplug.devices.begin(), vm_.hotplug.devices.end(),
                         [](const PluggedDevice& d) { return d.unplug_pending; });
  if (!any) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::set<std::string> present, PeripheralIds("pending unplugs"));
  std::vector<std::string> gone;
  for (const PluggedDevice& d : vm_.hotplug.devices) {
    if (d.unplug_pending && present.count(d.id) == 0) gone.push_back(d.id);
  }
  for (const std::string& id : gone) RETURN_IF_ERROR(Release(id));
  return absl::OkStatus();
}

absl::StatusOr<ReconcileReport> Hotplug::Reconcile() {
  ReconcileReport report;
  const std::string what = "sandbox " + vm_.sandbox_id;
  ASSIGN_OR_RETURN(Json status, Run(what, "query-status", nullptr));
  report.run_state = status.value("status", "");
  ASSIGN_OR_RETURN(std::set<std::string> present, PeripheralIds(what));
  const int64_t next_before = vm_.hotplug.next_index;
  auto advance_past = [&](const std::string& id) {
    vm_.hotplug.next_index = std::max(vm_.hotplug.next_index, HotplugIndex(id) + 1);
  };
  for (const std::string& id : present) advance_past(id);
  const bool had_intent = vm_.hotplug.intent.has_value();
  if (had_intent) {
    const HotplugIntent intent = *vm_.hotplug.intent;
    advance_past(intent.device.id);
    absl::Status rolled = RollIntent(intent, present, report);
    vm_.hotplug.intent.reset();
    if (!rolled.ok()) {
      // Whatever was left is named in the error; the record keeps what QEMU has.
      RETURN_IF_ERROR(Checkpoint());
      return rolled;
    }
  }
  const size_t devices_before = vm_.hotplug.devices.size();
  RETURN_IF_ERROR(FinishPendingUnplugs());
  if (vm_.hotplug.devices.size() != devices_before) {
    report.actions.push_back(
        absl::StrCat(devices_before - vm_.hotplug.devices.size(), " pending unplug(s) finished"));
  }
  RETURN_IF_ERROR(RemoveOrphanBackends(report));
  if (had_intent || vm_.hotplug.next_index != next_before ||
      vm_.hotplug.devices.size() != devices_before) {
    RETURN_IF_ERROR(Checkpoint());
  }
  return report;
}

absl::Status Hotplug::RollIntent(const HotplugIntent& intent, const std::set<std::string>& present,
                                 ReconcileReport& report) {
  const PluggedDevice& d = intent.device;
  const bool in_qemu = present.count(d.id) != 0;
  const std::string interrupted =
      absl::StrCat(d.id, ": the interrupted ", intent.op, " (at ", intent.step, ")");
  if (intent.op == kIntentPlug) {
    if (in_qemu) {
      PluggedDevice plugged = d;
      plugged.fd_names.clear();
      if (vm_.hotplug.Find(d.id) == nullptr) vm_.hotplug.devices.push_back(std::move(plugged));
      report.actions.push_back(interrupted + " rolled forward: QEMU has the device");
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(Teardown(d));
    report.actions.push_back(interrupted + " rolled back: its backends and fds removed");
    return absl::OkStatus();
  }
  if (intent.op == kIntentUnplug) {
    if (!in_qemu) {
      // Release forgot the device before tearing down; a crash after that left only the intent.
      RETURN_IF_ERROR(vm_.hotplug.Find(d.id) != nullptr ? Release(d.id) : Teardown(d));
      report.actions.push_back(interrupted + " finished: QEMU no longer has the device");
      return absl::OkStatus();
    }
    if (vm_.hotplug.Find(d.id) == nullptr) vm_.hotplug.devices.push_back(d);
    absl::Status st = DeleteDevice(*vm_.hotplug.Find(d.id));
    if (st.ok()) {
      RETURN_IF_ERROR(Release(d.id));
      report.actions.push_back(interrupted + " carried through");
      return absl::OkStatus();
    }
    if (absl::IsDeadlineExceeded(st) || absl::IsFailedPrecondition(st)) {
      // Pending (recorded so) or refused by the guest (the device stays): both are recorded.
      report.actions.push_back(absl::StrCat(interrupted, " continued: ", st.message()));
      return absl::OkStatus();
    }
    return st;
  }
  // resize: the requested size is set again (the same value twice is harmless).
  PluggedDevice* recorded = vm_.hotplug.Find(d.id);
  if (recorded == nullptr || !in_qemu) {
    return absl::FailedPreconditionError(
        absl::StrCat(interrupted, ": the virtio-mem device is not in QEMU or in the record"));
  }
  RETURN_IF_ERROR(Run(d.id, "qom-set",
                      {{"path", "/machine/peripheral/" + d.id},
                       {"property", "requested-size"},
                       {"value", d.size_bytes}})
                      .status());
  recorded->size_bytes = d.size_bytes;
  report.actions.push_back(
      absl::StrCat(interrupted, " rolled forward to ", d.size_bytes / kMiB, " MiB"));
  return absl::OkStatus();
}

absl::Status Hotplug::RemoveOrphanBackends(ReconcileReport& report) {
  std::set<std::string> owned;
  for (const PluggedDevice& d : vm_.hotplug.devices) {
    for (const std::string* name : {&d.node_name, &d.object, &d.chardev}) {
      if (!name->empty()) owned.insert(*name);
    }
  }
  const std::string what = "sandbox " + vm_.sandbox_id;
  ASSIGN_OR_RETURN(Json nodes, Run(what, "query-named-block-nodes", {{"flat", true}}));
  ASSIGN_OR_RETURN(Json objects, Run(what, "qom-list", {{"path", "/objects"}}));
  ASSIGN_OR_RETURN(Json chardevs, Run(what, "query-chardev", nullptr));
  auto remove = [&](const std::string& name, absl::string_view command, const Json& args) {
    if (!IsHotplugBackend(name) || owned.count(name) != 0) return;
    owned.insert(name);  // a node can be listed more than once
    absl::Status st = RunOnceReleased(name, command, args);
    if (st.ok() || AlreadyGone(st)) {
      report.actions.push_back(absl::StrCat(name, ": orphan removed (", command, ")"));
    } else {
      // Not worth failing the caller's operation for: the next reconciliation tries again.
      report.actions.push_back(absl::StrCat(name, ": orphan not removed yet (", st.message(), ")"));
    }
  };
  for (const Json& n : nodes) {
    const std::string name = n.value("node-name", "");
    remove(name, "blockdev-del", {{"node-name", name}});
  }
  for (const Json& o : objects) {
    const std::string name = o.value("name", "");
    remove(name, "object-del", {{"id", name}});
  }
  for (const Json& c : chardevs) {
    const std::string name = c.value("label", "");
    remove(name, "chardev-remove", {{"id", name}});
  }
  return absl::OkStatus();
}

}  // namespace runvm::qemu
