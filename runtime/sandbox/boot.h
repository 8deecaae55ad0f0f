// Booting a sandbox: the one path every create takes (`runvm create`/`run` for a container that
// owns its VM, `runvm sandbox create`, and through the seam in runtime/sandbox/vm.h).
//
//   ASSIGN_OR_RETURN(LoadedConfig loaded, LoadEffectiveConfig(...));
//   RETURN_IF_ERROR(BootSandbox(store, "abc", loaded, /*wait_guest=*/true));
#ifndef RUNVM_RUNTIME_SANDBOX_BOOT_H_
#define RUNVM_RUNTIME_SANDBOX_BOOT_H_

#include <string>

#include "absl/status/statusor.h"
#include "proto/config.h"
#include "runtime/config/loader.h"
#include "runtime/sandbox/store.h"

namespace runvm {

// The accelerator a sandbox gets: "tcg" when configured so; otherwise "kvm" when the KVM probe
// boots the guest kernel, else "tcg" (or, with accelerator = "kvm", an error). `how` says why.
struct Accelerator {
  std::string name;  // "kvm" or "tcg"
  std::string how;
};
absl::StatusOr<Accelerator> ResolveAccelerator(const config::QemuConfig& q,
                                               const std::string& kvm_device = "/dev/kvm");

// Checks the configured files, chooses the accelerator, reads the host's memory and boots the
// sandbox VM (SandboxStore::Create), then carries the pod's network namespace `netns` (a path;
// empty: none) into it (ConnectPodNetwork). All or nothing: a failure deletes the sandbox.
absl::Status BootSandbox(SandboxStore& store, const std::string& id, const LoadedConfig& loaded,
                         bool wait_guest, const std::string& netns = "");

}  // namespace runvm

#endif  // RUNVM_RUNTIME_SANDBOX_BOOT_H_
