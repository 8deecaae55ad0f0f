#include "runtime/sandbox/boot.h"

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "hypervisor/qemu/accel_probe.h"
#include "hypervisor/qemu/vm.h"
#include "runtime/sandbox/network.h"

namespace runvm {

absl::StatusOr<Accelerator> ResolveAccelerator(const config::QemuConfig& q,
                                               const std::string& kvm_device) {
  if (q.accelerator == "tcg") return Accelerator{"tcg", "TCG (configured: accelerator = \"tcg\")"};
  qemu::AccelProbe probe =
      qemu::ProbeKvm({.qemu = q.path, .kernel = q.kernel, .kvm_device = kvm_device});
  if (probe.kvm_usable) return Accelerator{"kvm", absl::StrCat("KVM: ", probe.reason)};
  if (q.accelerator == "kvm") {
    return absl::FailedPreconditionError(
        absl::StrCat("accelerator = \"kvm\" but KVM is unusable: ", probe.reason));
  }
  return Accelerator{"tcg", absl::StrCat("TCG selected: KVM is unusable: ", probe.reason)};
}

absl::Status BootSandbox(SandboxStore& store, const std::string& id, const LoadedConfig& loaded,
                         bool wait_guest, const std::string& netns) {
  if (!netns.empty() && !wait_guest) {
    return absl::InvalidArgumentError(
        absl::StrCat("sandbox ", id, ": a pod network needs the guest up (do not skip the wait)"));
  }
  RETURN_IF_ERROR(ValidateSandboxId(id));
  if (std::vector<std::string> problems = CheckConfigFiles(loaded); !problems.empty()) {
    return absl::FailedPreconditionError(problems.front());
  }
  const std::string& model = loaded.config.runtime.internetworking_model;
  if (!netns.empty()) RETURN_IF_ERROR(CheckPodNetwork(id, netns, model));
  ASSIGN_OR_RETURN(Accelerator accel, ResolveAccelerator(loaded.config.hypervisor));
  LogDebug(absl::StrCat("sandbox ", id, ": accelerator ", accel.how));
  ASSIGN_OR_RETURN(int64_t host_memory, qemu::HostMemoryMib());
  RETURN_IF_ERROR(store.Create({.config = loaded.config.hypervisor,
                                .sandbox_id = id,
                                .accelerator = accel.name,
                                .host_memory_mib = host_memory},
                               wait_guest));
  if (netns.empty()) return absl::OkStatus();
  absl::Status connected = ConnectPodNetwork(store, id, netns, model);
  if (!connected.ok()) {
    if (absl::Status undone = store.Delete(id, /*force=*/true); !undone.ok()) {
      LogWarning(absl::StrCat("sandbox ", id, ": undoing the failed boot: ", undone.message()));
    }
  }
  return connected;
}

}  // namespace runvm
