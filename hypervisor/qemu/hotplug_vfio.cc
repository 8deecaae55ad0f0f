// Hotplug: VFIO devices, a whole IOMMU group at a time.
#include <sys/stat.h>

#include <set>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "base/failpoint.h"
#include "base/status.h"
#include "devices/vfio.h"
#include "hypervisor/qemu/hotplug_internal.h"

namespace runvm::qemu {

using Json = nlohmann::json;
using namespace hotplug_internal;  // NOLINT: the files of one class

absl::StatusOr<std::vector<PluggedDevice>> Hotplug::AddVfio(const std::string& device) {
  RETURN_IF_ERROR(NeedsRootQemu(absl::StrCat("VFIO device ", device)));
  ASSIGN_OR_RETURN(devices::VfioGroup group, devices::DiscoverVfio(options_.sysfs_root, device));
  RETURN_IF_ERROR(FinishPendingUnplugs());
  const bool on_root = vm_.config.hotplug_vfio_on_root_bus;
  const bool q35 = vm_.config.machine_type == "q35";
  UndoLog undo(*this);
  std::vector<PluggedDevice> added;
  for (const devices::VfioFunction& f : group.functions) {
    const std::string what = absl::StrCat("VFIO device ", f.name);
    PluggedDevice d{.kind = kKindVfio, .source = f.name};
    absl::StatusOr<PciPlace> place =
        !on_root ? FreeBridgeSlot(vm_.config, vm_.hotplug, what)
        : q35    ? FreeRootPort(vm_.config, vm_.hotplug, what)
                 : absl::StatusOr<PciPlace>(PciPlace{RootBus(vm_.config), -1, ""});
    if (!place.ok()) return undo.Undo(place.status());
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
    absl::StatusOr<PluggedDevice> plugged = Commit(d, args, undo);
    if (!plugged.ok()) return plugged.status();  // Commit undid the earlier functions
    undo.Add("VFIO device " + d.id, [this, id = d.id]() -> absl::Status {
      PluggedDevice* p = vm_.hotplug.Find(id);
      if (p == nullptr) return absl::OkStatus();
      RETURN_IF_ERROR(DeleteDevice(*p));
      return Release(id);
    });
    added.push_back(*std::move(plugged));
  }
  return added;
}

}  // namespace runvm::qemu
