#include "hypervisor/qemu/pci_topology.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace runvm::qemu {
namespace {

std::string Hex2(int v) { return absl::StrCat(absl::Hex(v, absl::kZeroPad2)); }

}  // namespace

std::string RootBus(const config::QemuConfig& c) {
  return c.machine_type == "q35" ? "pcie.0" : "pci.0";
}
std::string BridgeId(int64_t i) { return absl::StrCat("pci-bridge-", i); }
int BridgeSlot(int64_t i) { return kFirstBridgeSlot + static_cast<int>(i); }
std::string RootPortId(int64_t i) { return absl::StrCat("rp", i); }
int RootPortSlot(const config::QemuConfig& c, int64_t i) {
  return BridgeSlot(c.default_bridges + i);
}

absl::StatusOr<PciPlace> FreeBridgeSlot(const config::QemuConfig& c, const HotplugState& state,
                                        absl::string_view device) {
  for (int64_t b = 0; b < c.default_bridges; ++b) {
    const std::string bus = BridgeId(b);
    for (int slot = kFirstBridgeDeviceSlot; slot <= kLastBridgeDeviceSlot; ++slot) {
      bool used =
          std::any_of(state.devices.begin(), state.devices.end(),
                      [&](const PluggedDevice& d) { return d.bus == bus && d.slot == slot; });
      if (!used) return PciPlace{bus, slot, Hex2(BridgeSlot(b)) + "/" + Hex2(slot)};
    }
  }
  return absl::ResourceExhaustedError(
      absl::StrCat(device, ": no free slot on the ", c.default_bridges, " PCI bridge(s) (",
                   kLastBridgeDeviceSlot - kFirstBridgeDeviceSlot + 1,
                   " slots each); raise default_bridges or unplug a device"));
}

absl::StatusOr<PciPlace> FreeRootPort(const config::QemuConfig& c, const HotplugState& state,
                                      absl::string_view device) {
  if (c.pcie_root_port <= 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        device,
        ": needs a PCIe root port on q35, but pcie_root_port is 0; set it to the number "
        "of devices to hot-plug on the root bus"));
  }
  for (int64_t i = 0; i < c.pcie_root_port; ++i) {
    const std::string bus = RootPortId(i);
    bool used = std::any_of(state.devices.begin(), state.devices.end(),
                            [&](const PluggedDevice& d) { return d.bus == bus; });
    if (!used) {
      return PciPlace{bus, 0, Hex2(RootPortSlot(c, i)) + "/00"};
    }
  }
  return absl::ResourceExhaustedError(
      absl::StrCat(device, ": all ", c.pcie_root_port, " PCIe root ports are in use"));
}

}  // namespace runvm::qemu
