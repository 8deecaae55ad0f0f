// Hotplug: memory, as pc-dimms or by resizing the virtio-mem device.
#include <sys/stat.h>

#include <set>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "base/failpoint.h"
#include "base/status.h"
#include "hypervisor/qemu/hotplug_internal.h"

namespace runvm::qemu {

using Json = nlohmann::json;
using namespace hotplug_internal;  // NOLINT: the files of one class

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
  ASSIGN_OR_RETURN(Json memdevs, Command("memory", "query-memory-devices", nullptr));
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
  UndoLog undo(*this);
  RETURN_IF_ERROR(AddBackend(undo, d, "object-add", backend, "memory backend " + d.object,
                             "object-del", {{"id", d.object}}));
  ASSIGN_OR_RETURN(
      PluggedDevice plugged,
      Commit(d, {{"driver", "pc-dimm"}, {"id", d.id}, {"memdev", d.object}, {"slot", slot}}, undo));
  return MemoryResult{.added_mib = add, .device_id = plugged.id};
}

absl::StatusOr<MemoryResult> Hotplug::ResizeVirtioMem(int64_t add_mib) {
  auto it = std::find_if(vm_.hotplug.devices.begin(), vm_.hotplug.devices.end(),
                         [](const PluggedDevice& d) { return d.kind == kKindVirtioMem; });
  if (it != vm_.hotplug.devices.end()) {
    PluggedDevice resized = *it;
    resized.size_bytes += add_mib * kMiB;
    RETURN_IF_ERROR(Intend(kIntentResize, "qom-set", resized));
    absl::Status st = Command(resized.id, "qom-set",
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
  ASSIGN_OR_RETURN(PciPlace place, FreeBridgeSlot(vm_.config, vm_.hotplug, "virtio-mem"));
  PluggedDevice d{.id = NextId("virtiomem"),
                  .kind = kKindVirtioMem,
                  .bus = place.bus,
                  .slot = place.slot,
                  .guest_address = place.guest_address,
                  .size_bytes = add_mib * kMiB};
  d.object = "mem-" + d.id;
  Json backend = MemoryBackend(vm_.config, d.object, region * kMiB);
  UndoLog undo(*this);
  RETURN_IF_ERROR(AddBackend(undo, d, "object-add", backend, "memory backend " + d.object,
                             "object-del", {{"id", d.object}}));
  ASSIGN_OR_RETURN(PluggedDevice plugged, Commit(d,
                                                 {{"driver", "virtio-mem-pci"},
                                                  {"id", d.id},
                                                  {"memdev", d.object},
                                                  {"requested-size", d.size_bytes},
                                                  {"bus", d.bus},
                                                  {"addr", Hex2(d.slot)}},
                                                 undo));
  return MemoryResult{.added_mib = add_mib, .device_id = plugged.id};
}

}  // namespace runvm::qemu
