// VFIO discovery from sysfs: a device's IOMMU group, every function in it, whether each is PCIe,
// and that each is usable (a PCI function bound to vfio-pci, or a mediated device). The sysfs
// root is injectable, so tests run against a fake tree.
//
//   ASSIGN_OR_RETURN(devices::VfioGroup g, devices::DiscoverVfio("/sys", "0000:3b:00.0"));
//   for (const devices::VfioFunction& f : g.functions) ...   // plug every one
#ifndef RUNVM_DEVICES_VFIO_H_
#define RUNVM_DEVICES_VFIO_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace runvm::devices {

struct VfioFunction {
  std::string name;  // "0000:3b:00.0", or the mdev UUID
  bool is_mdev = false;
  bool is_pcie = false;  // config space larger than 256 bytes (the parent's, for an mdev)
  // What QEMU's vfio-pci takes: host=<name> for a PCI function, sysfsdev=<this> for an mdev
  // (always under /sys, whatever root was used for discovery).
  std::string sysfsdev;
};

struct VfioGroup {
  int group = -1;
  std::vector<VfioFunction> functions;  // sorted by name
};

// `device` is a PCI address ("0000:3b:00.0" or "3b:00.0"), a mediated device's UUID, or
// "/dev/vfio/<group>". Errors name the device and the cause; a function of the group that is not
// bound to vfio-pci refuses the whole group (QEMU could not open it).
absl::StatusOr<VfioGroup> DiscoverVfio(const std::string& sysfs_root, const std::string& device);

}  // namespace runvm::devices

#endif  // RUNVM_DEVICES_VFIO_H_
