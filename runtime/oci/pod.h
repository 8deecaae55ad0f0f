// Pods: which containers share a sandbox VM, and how big that VM must be.
//
//   ASSIGN_OR_RETURN(PodRole role, PodRoleOf("c2", spec.annotations));
//   if (role.kind == PodRole::kMember) { ... join sandbox role.sandbox_id ... }
//   VmSize want = PodSize(vm, {sandbox_resources, c1_resources, c2_resources});
//   RETURN_IF_ERROR(CheckFits(want, vm, "c2"));
//
// A CRI runtime marks its containers with annotations: containerd's io.kubernetes.cri.container-
// type ("sandbox" or "container") and io.kubernetes.cri.sandbox-id, CRI-O's
// io.kubernetes.cri-o.ContainerType and io.kubernetes.cri-o.SandboxID. The sandbox container
// boots the VM (its id is the sandbox's); a container joins the VM of the sandbox it names.
// Without these annotations a container is standalone: its own VM, as a sandbox of one.
//
// Sizing is Kata's rule: default_vcpus plus, per container, ceil(cpu quota / period); and
// default_memory plus, per container, its memory limit in MiB. The VM grows by vCPU and memory
// hotplug to that size and never beyond default_maxvcpus or its maxmem; it does not shrink while
// it runs (Kata keeps hot-added memory too; QEMU under TCG cannot re-plug an unplugged vCPU).
#ifndef RUNVM_RUNTIME_OCI_POD_H_
#define RUNVM_RUNTIME_OCI_POD_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "hypervisor/qemu/vm.h"
#include "proto/oci_spec.h"

namespace runvm {

inline constexpr char kCriContainerType[] = "io.kubernetes.cri.container-type";
inline constexpr char kCriSandboxId[] = "io.kubernetes.cri.sandbox-id";
inline constexpr char kCrioContainerType[] = "io.kubernetes.cri-o.ContainerType";
inline constexpr char kCrioSandboxId[] = "io.kubernetes.cri-o.SandboxID";

struct PodRole {
  enum Kind { kStandalone, kSandbox, kMember };
  Kind kind = kStandalone;
  std::string sandbox_id;  // the sandbox whose VM the container runs in; its own id unless kMember
};

// The role the annotations give container `id`. InvalidArgument, naming the annotation, for an
// unknown type, a member without a sandbox id, a sandbox naming another sandbox, or containerd's
// and CRI-O's annotations disagreeing.
absl::StatusOr<PodRole> PodRoleOf(const std::string& id,
                                  const std::map<std::string, std::string>& annotations);

struct VmSize {
  int vcpus = 0;
  int64_t memory_mib = 0;
  bool operator==(const VmSize&) const = default;
};

// What the VM has now: its boot size plus what has been hot-plugged.
VmSize CurrentSize(const qemu::RunningVm& vm);
// What the pod needs (Kata's rule, above), given every container's resources.
VmSize PodSize(const qemu::RunningVm& vm, const std::vector<oci::Resources>& containers);
// FailedPrecondition naming `what`, the figure and the limit when `size` exceeds
// default_maxvcpus or the VM's maxmem.
absl::Status CheckFits(const VmSize& size, const qemu::RunningVm& vm, const std::string& what);

// The spec's namespaces as the guest must see them. A path names a namespace of the host, which
// means nothing in the guest: a network namespace with a path (the pod's, made by CNI) is the
// VM's own network, so the entry goes; a member's ipc, uts and pid namespaces with a path are the
// sandbox container's, named by the guest's /proc/<sandbox_guest_pid>/ns/<type>. Any other path
// is refused, naming the namespace.
absl::Status MapNamespaces(const PodRole& role, int64_t sandbox_guest_pid,
                           std::vector<oci::Namespace>& namespaces);

}  // namespace runvm

#endif  // RUNVM_RUNTIME_OCI_POD_H_
