// `runvm check`: can this host create sandboxes, and if not, why not.
//
// Each check yields one line: ok (needed and present), info (reported, not needed), or fail
// (a sandbox cannot be created). The host passes when no check fails.
#ifndef RUNVM_RUNTIME_HOST_CHECK_H_
#define RUNVM_RUNTIME_HOST_CHECK_H_

#include <string>

#include <vector>
#include "absl/status/statusor.h"

#include "hypervisor/qemu/vm.h"
#include "runtime/config/loader.h"

namespace runvm {

enum class CheckLevel { kOk, kInfo, kFail };

struct CheckResult {
  CheckLevel level;
  std::string name;    // "qemu", "kernel", "accelerator", ...
  std::string detail;  // one sentence
};

struct HostPaths {
  std::string kvm = "/dev/kvm";
  std::string vhost_vsock = "/dev/vhost-vsock";
  std::string vhost_net = "/dev/vhost-net";
  std::string cgroup_root = "/sys/fs/cgroup";
};

struct CheckOptions {
  // Also boot a throwaway sandbox VM with this configuration and wait for its guest.
  bool boot = false;
  std::string socket_base = qemu::kDefaultSocketBase;
};

// The accelerator a sandbox gets: "tcg" when configured so; otherwise "kvm" when the KVM probe
// boots the guest kernel, else "tcg" (or, with accelerator = "kvm", an error). `how` says why.
struct Accelerator {
  std::string name;  // "kvm" or "tcg"
  std::string how;
};
absl::StatusOr<Accelerator> ResolveAccelerator(const config::QemuConfig& q,
                                               const HostPaths& paths = {});

std::vector<CheckResult> CheckHost(const LoadedConfig& loaded, const HostPaths& paths = {},
                                   const CheckOptions& options = {});

// "ok    qemu: ..." lines; true when nothing failed.
bool RenderCheck(const std::vector<CheckResult>& results, std::string* out);

}  // namespace runvm

#endif  // RUNVM_RUNTIME_HOST_CHECK_H_
