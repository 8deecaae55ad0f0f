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

std::vector<CheckResult> CheckHost(const LoadedConfig& loaded, const HostPaths& paths = {},
                                   const CheckOptions& options = {});

// "ok    qemu: ..." lines; true when nothing failed.
bool RenderCheck(const std::vector<CheckResult>& results, std::string* out);

}  // namespace runvm

#endif  // RUNVM_RUNTIME_HOST_CHECK_H_
