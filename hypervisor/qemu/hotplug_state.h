// What has been hot-plugged into a sandbox VM, as recorded in its state: each device with the
// QEMU objects behind it and its guest address. Every allocation (bridge slot, root port, SCSI
// index, memory slot, NVDIMM index, vCPU) is derived from this list, so a device is allocated
// exactly when it is recorded, which happens only after QEMU accepted it.
#ifndef RUNVM_HYPERVISOR_QEMU_HOTPLUG_STATE_H_
#define RUNVM_HYPERVISOR_QEMU_HOTPLUG_STATE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace runvm::qemu {

// Device kinds, as recorded.
inline constexpr char kKindVirtioBlk[] = "virtio-blk";
inline constexpr char kKindScsi[] = "virtio-scsi";
inline constexpr char kKindNvdimm[] = "nvdimm";
inline constexpr char kKindVhostUserBlk[] = "vhost-user-blk";
inline constexpr char kKindNet[] = "virtio-net";
inline constexpr char kKindVfio[] = "vfio";
inline constexpr char kKindDimm[] = "pc-dimm";
inline constexpr char kKindVirtioMem[] = "virtio-mem";
inline constexpr char kKindCpu[] = "cpu";
inline constexpr char kKindSerialPort[] = "virtserialport";

struct PluggedDevice {
  std::string id;    // the QEMU device id ("blk0", "net1", "dimm2", "cpu-1-0-0")
  std::string kind;  // one of kKind*
  std::string bus;   // "pci-bridge-0", "rp1", "pci.0", "scsi0.0"; empty when QEMU places it
  int slot = -1;     // bridge slot, root-bus slot, SCSI index, memory slot, NVDIMM index
  // Where the guest finds it: "02/01" (PCI path), "0:3" (SCSI id:lun), "/dev/pmem1",
  // "socket 1 core 0 thread 0"; empty when unknown.
  std::string guest_address;
  std::string source;      // disk path, tap name, host PCI address, vhost-user socket
  int64_t size_bytes = 0;  // disks, NVDIMMs, memory
  // Backends, torn down only after the device is gone.
  std::string node_name;  // blockdev
  std::string netdev;
  std::string object;  // memory backend
  std::string chardev;
  std::vector<std::string> fd_names;  // named monitor fds still held (closefd)
  // device_del was sent but the guest had not released the device in time; finished when
  // QEMU no longer has it.
  bool unplug_pending = false;
};

// Operations an intent can name.
inline constexpr char kIntentPlug[] = "plug";
inline constexpr char kIntentUnplug[] = "unplug";
inline constexpr char kIntentResize[] = "resize";

// What a plug, unplug or resize is about to do, saved before each of its steps. A later
// invocation that finds one asks QEMU what happened and rolls the operation forward or back
// (Hotplug::Reconcile).
struct HotplugIntent {
  std::string op;    // kIntentPlug, kIntentUnplug or kIntentResize
  std::string step;  // the step about to run: "blockdev-add", "getfd", "device_add", ...
  // plug: the device as it will be recorded, naming every backend and fd it will create;
  // unplug: the device as recorded; resize: the virtio-mem device with its requested size.
  PluggedDevice device;
};

struct HotplugState {
  // Monotonic: an id, once used, is never handed out again in this sandbox.
  int64_t next_index = 0;
  std::vector<PluggedDevice> devices;
  std::optional<HotplugIntent> intent;

  const PluggedDevice* Find(const std::string& id) const;
  PluggedDevice* Find(const std::string& id);
};

}  // namespace runvm::qemu

#endif  // RUNVM_HYPERVISOR_QEMU_HOTPLUG_STATE_H_
