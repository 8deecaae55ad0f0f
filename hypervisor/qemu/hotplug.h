// Hot-plugging devices into a running sandbox VM over QMP, with rollback, and unplugging them
// safely against slow or refusing guests. This is the hypervisor interface the runtime uses for
// container rootfs and volumes (disks), network endpoints (NICs), devices (VFIO) and `update`
// (vCPUs, memory).
//
//   ASSIGN_OR_RETURN(RunningVm vm, LoadVm(store, key));
//   ASSIGN_OR_RETURN(auto qmp, qmp::Client::Connect(vm.qmp_socket(), Deadline(2s)));
//   Hotplug hp(*qmp, vm);
//   absl::StatusOr<PluggedDevice> disk = hp.AddDisk({.path = "/srv/data.img"});
//   RETURN_IF_ERROR(SaveVm(store, key, vm));   // vm.hotplug now holds the device (or not)
//
// Rules (docs/decisions.md, ../shared/DESIGN.md):
// - An allocation is derived from the recorded devices, and a device is recorded only after
//   QEMU accepted it. A failed step undoes that operation's earlier steps (blockdev-del,
//   netdev_del, object-del, chardev-remove, closefd); errors name the device, the step and QEMU's
//   error class and text.
// - Unplug registers for DEVICE_DELETED (and the guest's refusal) before device_del, waits a
//   bounded time, and only then tears the backends down and frees the slot. On timeout the
//   device stays recorded as unplug pending and is finished by a later call once QEMU no longer
//   has it.
// - Before each step the record says what is about to happen (HotplugIntent, saved through
//   HotplugOptions::checkpoint); a runtime killed anywhere leaves an intent that Reconcile rolls
//   forward (QEMU has the device) or back (its backends and fds removed).
// - Every QMP call has a deadline; a session that broke or timed out is not used for rollback
//   (what QEMU may still hold is reported in the error, and reconciled later).
#ifndef RUNVM_HYPERVISOR_QEMU_HOTPLUG_H_
#define RUNVM_HYPERVISOR_QEMU_HOTPLUG_H_

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "hypervisor/qemu/hotplug_state.h"
#include "hypervisor/qemu/vm.h"
#include "nlohmann/json_fwd.hpp"

namespace runvm::qmp {
class Client;
}

namespace runvm::qemu {

struct DiskRequest {
  std::string path;  // a regular file or a block device (a socket for vhost-user-blk)
  bool read_only = false;
  // "virtio-blk", "virtio-scsi", "nvdimm" or "vhost-user-blk"; empty: block_device_driver.
  std::string driver;
};

struct NicRequest {
  std::string tap_name;  // created here, in `netns`
  std::string netns;     // path of the network namespace; empty: runvm's own
  std::string mac;       // the guest NIC's MAC
  int queues = 0;        // 0: one per boot vCPU
};

struct VcpuResult {
  std::vector<std::string> ids;  // plugged (or unplugged) now, in order
  int online = 0;                // vCPUs QEMU has afterwards
  std::string warning;           // set when the request was clamped
};

struct MemoryResult {
  int64_t added_mib = 0;  // after rounding up to the memory block size
  std::string device_id;
};

// What Reconcile found and did, for the log and for `state`.
struct ReconcileReport {
  std::string run_state;             // query-status: "running", "paused", ...
  std::vector<std::string> actions;  // one line per roll-forward, roll-back or removed orphan
};

struct HotplugOptions {
  // Saves the VM record. Called with vm.hotplug.intent set before each step of a plug, unplug
  // or resize, and again once the outcome is recorded (intent cleared). A failure before a step
  // stops the operation there (its earlier steps undone); null: nothing is saved (unit tests).
  std::function<absl::Status()> checkpoint;
  absl::Duration command_timeout = absl::Seconds(5);
  absl::Duration unplug_timeout = absl::Seconds(10);
  std::string sysfs_root = "/sys";  // for VFIO discovery
  int64_t memory_block_mib = 128;   // the guest's memory block size
};

class Hotplug {
 public:
  // `vm` is updated in place (vm.hotplug); the caller saves it after each call, also after a
  // failed one (a partial vCPU plug or a pending unplug is recorded).
  Hotplug(qmp::Client& qmp, RunningVm& vm, HotplugOptions options = {});

  absl::StatusOr<PluggedDevice> AddDisk(const DiskRequest& request);
  absl::StatusOr<PluggedDevice> AddNic(const NicRequest& request);
  // Every function of the device's IOMMU group, in order; all or none.
  absl::StatusOr<std::vector<PluggedDevice>> AddVfio(const std::string& device);
  // Plugs `count` vCPUs, lowest free socket/core first, clamped to default_maxvcpus (with a
  // warning). When a later one fails, the ones before stay plugged and recorded, and the error
  // lists them.
  absl::StatusOr<VcpuResult> AddVcpus(int count);
  // Unplugs up to `count` hot-plugged vCPUs, last plugged first; boot vCPUs are never removed.
  // Refused under TCG, where QEMU 7.2 crashes on plugging a vCPU again after an unplug.
  absl::StatusOr<VcpuResult> RemoveVcpus(int count);
  // Adds at least `mib` MiB of guest memory, rounded up to the memory block size: a pc-dimm, or
  // with enable_virtio_mem the requested size of the sandbox's virtio-mem device.
  absl::StatusOr<MemoryResult> AddMemory(int64_t mib);
  // A virtio-serial port the guest sees as `name` (/sys/class/virtio-ports/*/name), backed by a
  // unix socket QEMU listens on (the device's `source`): a container process's stdio.
  absl::StatusOr<PluggedDevice> AddSerialPort(const std::string& name);
  // Unplugs a recorded device (disk, NIC, VFIO function, memory, serial port). A guest refusal is
  // an error and tears nothing down; a timeout leaves the device recorded as unplug pending
  // (DeadlineExceeded).
  absl::Status Remove(const std::string& id);
  // Finishes pending unplugs whose devices QEMU no longer has. Every other call does this first.
  absl::Status FinishPendingUnplugs();
  // Brings the record and QEMU into agreement; call once after connecting, before anything else.
  // Rolls an interrupted plug forward when QEMU has its device and back otherwise, carries an
  // interrupted unplug or resize through, finishes pending unplugs, deletes hot-plug backends
  // (block nodes, memory backends, chardevs) that no recorded device owns, and moves next_index
  // past every device id QEMU has, so that no id is used twice.
  absl::StatusOr<ReconcileReport> Reconcile();

 private:
  class UndoLog;  // what an operation made, undone when a later step fails

  absl::Time Deadline() const { return absl::Now() + options_.command_timeout; }
  absl::Status Checkpoint();
  // Records that `op` on `device` is about to run `step`, and saves.
  absl::Status Intend(const char* op, absl::string_view step, const PluggedDevice& device);
  // Clears the intent (the outcome is in the device list) and saves; `result` is returned, with
  // a failed save added to it.
  absl::Status Settle(absl::Status result = absl::OkStatus());
  // The first step of a plug after `Intend`-ing it: creates a backend, registered for undo.
  absl::Status AddBackend(UndoLog& undo, const PluggedDevice& device, absl::string_view command,
                          const nlohmann::json& args, std::string what,
                          absl::string_view undo_command, nlohmann::json undo_args);
  // Runs one QMP command for `device`; the error names the device and the command.
  absl::StatusOr<nlohmann::json> Command(absl::string_view device, absl::string_view command,
                                         const nlohmann::json& args);
  std::string NextId(absl::string_view prefix);
  // Whether QEMU runs as hypervisor_user (docs/security.md): what it would open itself after
  // its start is opened by runvm and passed by fd instead.
  bool Confined() const { return !vm_.config.hypervisor_user.empty(); }
  // FailedPrecondition naming `what` when QEMU would have to open it itself and is confined.
  absl::Status NeedsRootQemu(absl::string_view what) const;
  // Removes the fd sets QEMU holds for `device` (add-fd's opaque is the device id).
  absl::Status RemoveFdSets(const std::string& device);
  // device_add, then (on success) the device is recorded and the intent settled. On failure
  // `undo` is undone.
  absl::StatusOr<PluggedDevice> Commit(PluggedDevice device, const nlohmann::json& args,
                                       UndoLog& undo);
  absl::StatusOr<PluggedDevice> AddBlockDevice(const DiskRequest& request,
                                               const std::string& driver);
  absl::StatusOr<PluggedDevice> AddNvdimm(const DiskRequest& request);
  absl::StatusOr<PluggedDevice> AddVhostUserBlk(const DiskRequest& request);
  absl::StatusOr<MemoryResult> ResizeVirtioMem(int64_t add_mib);
  // The ids of the devices QEMU has (qom-list /machine/peripheral); errors name `device`.
  absl::StatusOr<std::set<std::string>> PeripheralIds(absl::string_view device);
  // device_del and the wait; OK once DEVICE_DELETED came or QEMU no longer has the device.
  absl::Status DeleteDevice(PluggedDevice& device);
  // The whole unplug of a recorded device, each step behind an intent.
  absl::Status Unplug(const std::string& id);
  // Forgets a device that is gone and tears down what backed it.
  absl::Status Release(const std::string& id);
  // Runs a backend delete, again while QEMU says the backend "is in use" (for a few seconds).
  absl::Status RunOnceReleased(absl::string_view device, absl::string_view command,
                               const nlohmann::json& args);
  // Deletes a gone device's backends and fds; ones QEMU no longer has are not an error.
  absl::Status Teardown(const PluggedDevice& device);
  absl::Status RollIntent(const HotplugIntent& intent, const std::set<std::string>& present,
                          ReconcileReport& report);
  absl::Status RemoveOrphanBackends(ReconcileReport& report);
  int64_t PluggedMemoryMib() const;
  // Refused under TCG (see RemoveVcpus).
  absl::Status VcpuUnplugAllowed() const;

  qmp::Client& qmp_;
  RunningVm& vm_;
  HotplugOptions options_;
};

}  // namespace runvm::qemu

#endif  // RUNVM_HYPERVISOR_QEMU_HOTPLUG_H_
