// The VM's PCI layout, fixed at boot by the command line (command_line.h) and filled by hotplug:
// on the root bus the PCI bridges from slot kFirstBridgeSlot, then the PCIe root ports (q35).
// Each bridge offers slots kFirstBridgeDeviceSlot..kLastBridgeDeviceSlot; a root port takes one
// device.
//
//   ASSIGN_OR_RETURN(PciPlace place, FreeBridgeSlot(vm.config, vm.hotplug, "disk /srv/d.img"));
//   // device_add ... "bus": place.bus, "addr": place.slot; the guest sees place.guest_address
#ifndef RUNVM_HYPERVISOR_QEMU_PCI_TOPOLOGY_H_
#define RUNVM_HYPERVISOR_QEMU_PCI_TOPOLOGY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "hypervisor/qemu/hotplug_state.h"
#include "proto/config.h"

namespace runvm::qemu {

inline constexpr int kFirstBridgeSlot = 2;
inline constexpr int kFirstBridgeDeviceSlot = 1;
inline constexpr int kLastBridgeDeviceSlot = 30;

std::string RootBus(const config::QemuConfig& c);          // "pcie.0" (q35) or "pci.0"
std::string BridgeId(int64_t i);                           // "pci-bridge-<i>"
int BridgeSlot(int64_t i);                                 // bridge i's slot on the root bus
std::string RootPortId(int64_t i);                         // "rp<i>"
int RootPortSlot(const config::QemuConfig& c, int64_t i);  // root port i's slot, after the bridges

// Where a hot-plugged PCI device goes: its bus, its slot there, and the guest's PCI path to it
// ("02/01": the bridge's slot on the root bus, then the device's on the bridge).
struct PciPlace {
  std::string bus;
  int slot = -1;
  std::string guest_address;
};
// The first slot on the bridges that no recorded device holds; ResourceExhausted naming
// `device` when every one is taken.
absl::StatusOr<PciPlace> FreeBridgeSlot(const config::QemuConfig& c, const HotplugState& state,
                                        absl::string_view device);
// The first PCIe root port no recorded device holds; FailedPrecondition when the configuration
// has none (pcie_root_port = 0), ResourceExhausted when all are in use.
absl::StatusOr<PciPlace> FreeRootPort(const config::QemuConfig& c, const HotplugState& state,
                                      absl::string_view device);

}  // namespace runvm::qemu

#endif  // RUNVM_HYPERVISOR_QEMU_PCI_TOPOLOGY_H_
