// Can KVM actually run a guest here? `/dev/kvm` existing is not enough: on some hosts (nested
// virtualisation without the needed CPU features) KVM accepts VMs and vCPUs, runs firmware, and
// then hangs in the guest kernel. The probe boots the configured kernel under KVM with no
// root filesystem and waits a bounded time for the kernel's first console line.
//
//   AccelProbe p = ProbeKvm({.qemu = cfg.path, .kernel = cfg.kernel});
//   if (!p.kvm_usable) LogInfo("KVM unusable: " + p.reason);
//
// The probe's QEMU is always killed and reaped before ProbeKvm() returns.
#ifndef RUNVM_HYPERVISOR_QEMU_ACCEL_PROBE_H_
#define RUNVM_HYPERVISOR_QEMU_ACCEL_PROBE_H_

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace runvm::qemu {

struct AccelProbeInput {
  std::string qemu;    // QEMU binary
  std::string kernel;  // guest kernel that prints "Linux version" on ttyS0
  std::string kvm_device = "/dev/kvm";
  absl::Duration timeout = absl::Seconds(3);
};

struct AccelProbe {
  bool kvm_usable = false;
  std::string reason;  // why not, or how it was proven
  absl::Duration took;
};

// The QEMU argv the probe runs (exposed for tests).
std::vector<std::string> ProbeArgv(const AccelProbeInput& in);

AccelProbe ProbeKvm(const AccelProbeInput& in);

}  // namespace runvm::qemu

#endif  // RUNVM_HYPERVISOR_QEMU_ACCEL_PROBE_H_
