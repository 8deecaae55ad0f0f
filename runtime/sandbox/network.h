// A sandbox's pod network: the network namespace the engine's CNI plugins set up for the pod,
// carried into the VM (../../docs/network.md). For each interface there (network/endpoint.h):
// a multi-queue tap beside it, joined to it by tc (network/tcfilter.h), a virtio-net NIC on the
// tap with the interface's MAC (qemu::Hotplug::AddNic, the fds passed by getfd; QEMU stays in
// runvm's namespace), and the guest agent names and addresses it as the interface was.
//
//   RETURN_IF_ERROR(ConnectPodNetwork(store, "abc", "/var/run/netns/cni-1", "tcfilter"));
//   ...
//   RETURN_IF_ERROR(ReleasePodNetwork(record));  // once QEMU is gone: the filters too
#ifndef RUNVM_RUNTIME_SANDBOX_NETWORK_H_
#define RUNVM_RUNTIME_SANDBOX_NETWORK_H_

#include <string>

#include "absl/status/status.h"
#include "runtime/sandbox/store.h"

namespace runvm {

// Most queues a NIC gets (one per vCPU up to this).
inline constexpr int kMaxNicQueues = 8;

// What ConnectPodNetwork will refuse, checked before the VM boots: an unknown or unbuilt model,
// a path that is no network namespace or has gone, an interface the model cannot carry.
absl::Status CheckPodNetwork(const std::string& id, const std::string& netns,
                             const std::string& model);

// Carries the network namespace at `netns` into running sandbox `id` with `model`
// (internetworking_model): "tcfilter" plugs a NIC per interface and has the agent configure
// them; "none" plugs nothing; "macvtap" is refused (not built). Each endpoint is in the sandbox
// record before its tap is made, so a failure or a crash at any point leaves a record from which
// ReleasePodNetwork (run by every stop and delete) removes what was made. Errors name the
// sandbox, the namespace and the interface.
absl::Status ConnectPodNetwork(SandboxStore& store, const std::string& id, const std::string& netns,
                               const std::string& model);

// Removes what the record's endpoints made in the pod's namespace that does not go with QEMU:
// the ingress filters on the interfaces (the taps vanish with QEMU's fds). Idempotent; nothing to
// do when the namespace or an interface is gone.
absl::Status ReleasePodNetwork(const SandboxRecord& record);

}  // namespace runvm

#endif  // RUNVM_RUNTIME_SANDBOX_NETWORK_H_
