// Hotplug: disks (virtio-blk, virtio-scsi, NVDIMM, vhost-user-blk).
#include <fcntl.h>
#include <sys/stat.h>

#include <set>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "base/failpoint.h"
#include "base/fd.h"
#include "base/status.h"
#include "devices/block.h"
#include "hypervisor/qemu/hotplug_internal.h"

namespace runvm::qemu {

using Json = nlohmann::json;
using namespace hotplug_internal;  // NOLINT: the files of one class

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
    ASSIGN_OR_RETURN(PciPlace place,
                     FreeBridgeSlot(vm_.config, vm_.hotplug, absl::StrCat("disk ", request.path)));
    d.bus = place.bus;
    d.slot = place.slot;
    d.guest_address = place.guest_address;
  }
  d.node_name = "drive-" + d.id;

  UndoLog undo(*this);
  std::string filename = disk.path;
  if (Confined()) {
    // QEMU, no longer root, opens the disk through an fd set runvm filled: /dev/fdset/<n>
    // (add-fd's opaque names the device, so the set goes with it: RemoveFdSets).
    ASSIGN_OR_RETURN(Fd fd, OpenFile(disk.path, (request.read_only ? O_RDONLY : O_RDWR)));
    absl::StatusOr<qmp::Client::AddedFd> added =
        qmp_.AddFd(std::move(fd), std::nullopt, d.id, Deadline());
    if (!added.ok()) return Annotate(added.status(), absl::StrCat(d.id, ": add-fd"));
    undo.Add("fd set of " + d.id, [this, set = added->fdset_id, id = d.id] {
      return Annotate(qmp_.RemoveFd(set, std::nullopt, Deadline()), id + ": remove-fd");
    });
    filename = absl::StrCat("/dev/fdset/", added->fdset_id);
  }
  Json node = {{"driver", "raw"},
               {"node-name", d.node_name},
               {"read-only", request.read_only},
               {"file", {{"driver", disk.driver()}, {"filename", filename}}}};
  if (vm_.config.block_device_cache_set) {
    node["cache"] = {{"direct", vm_.config.block_device_cache_direct},
                     {"no-flush", vm_.config.block_device_cache_noflush}};
  }
  RETURN_IF_ERROR(AddBackend(undo, d, "blockdev-add", node, "block node " + d.node_name,
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
  return Commit(std::move(d), dev, undo);
}

absl::StatusOr<PluggedDevice> Hotplug::AddNvdimm(const DiskRequest& request) {
  ASSIGN_OR_RETURN(devices::HostDisk disk, devices::InspectDisk(request.path));
  const std::string what = absl::StrCat("disk ", request.path);
  RETURN_IF_ERROR(NeedsRootQemu(what + " on an NVDIMM"));
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
  ASSIGN_OR_RETURN(Json memdevs, Command(what, "query-memory-devices", nullptr));
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
  UndoLog undo(*this);
  RETURN_IF_ERROR(AddBackend(undo, d, "object-add",
                             {{"qom-type", "memory-backend-file"},
                              {"id", d.object},
                              {"mem-path", disk.path},
                              {"size", disk.size_bytes},
                              {"share", !request.read_only},
                              {"readonly", request.read_only}},
                             "memory backend " + d.object, "object-del", {{"id", d.object}}));
  Json dev = {{"driver", "nvdimm"}, {"id", d.id}, {"memdev", d.object}};
  if (request.read_only) dev["unarmed"] = true;
  return Commit(std::move(d), dev, undo);
}

absl::StatusOr<PluggedDevice> Hotplug::AddVhostUserBlk(const DiskRequest& request) {
  const std::string what = absl::StrCat("vhost-user-blk disk ", request.path);
  RETURN_IF_ERROR(NeedsRootQemu(what));
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
  ASSIGN_OR_RETURN(PciPlace place, FreeBridgeSlot(vm_.config, vm_.hotplug, what));
  d.bus = place.bus;
  d.slot = place.slot;
  d.guest_address = place.guest_address;
  d.chardev = "char-" + d.id;
  UndoLog undo(*this);
  Json backend = {
      {"type", "socket"},
      {"data",
       {{"addr", {{"type", "unix"}, {"data", {{"path", request.path}}}}}, {"server", false}}}};
  RETURN_IF_ERROR(AddBackend(undo, d, "chardev-add", {{"id", d.chardev}, {"backend", backend}},
                             "chardev " + d.chardev, "chardev-remove", {{"id", d.chardev}}));
  return Commit(d,
                {{"driver", "vhost-user-blk-pci"},
                 {"id", d.id},
                 {"chardev", d.chardev},
                 {"bus", d.bus},
                 {"addr", Hex2(d.slot)}},
                undo);
}

}  // namespace runvm::qemu
