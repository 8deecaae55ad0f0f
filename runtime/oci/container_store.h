// The container records next to the sandboxes' (<root>/<id>/container.json), and the pieces the
// OCI verbs share: opening a container with its sandbox locked, the live status, asking the
// agent, growing the pod's VM, removing a pod member.
//
//   ContainerStore store(sandboxes);
//   ASSIGN_OR_RETURN(LockedContainer c, store.Lock("c1", "start"));   // sandbox locked
//   ASSIGN_OR_RETURN(agent_proto::Message reply, store.AskLive(c, request));
//   RETURN_IF_ERROR(store.Save(c.record));
#ifndef RUNVM_RUNTIME_OCI_CONTAINER_STORE_H_
#define RUNVM_RUNTIME_OCI_CONTAINER_STORE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/process_identity.h"
#include "proto/agent_protocol.h"
#include "proto/oci_spec.h"
#include "runtime/oci/record.h"
#include "runtime/sandbox/vm.h"

namespace runvm {

// How long any one exchange with the agent may take.
inline constexpr absl::Duration kAgentTimeout = absl::Seconds(30);

// A container's record with the sandbox it runs in opened (its lock held) for a change.
struct LockedContainer {
  std::unique_ptr<SandboxVm> vm;
  ContainerRecord record;
};

class ContainerStore {
 public:
  explicit ContainerStore(Sandboxes& sandboxes) : sandboxes_(sandboxes) {}

  Sandboxes& sandboxes() { return sandboxes_; }

  absl::Status Save(const ContainerRecord& r);
  // NotFound "container X does not exist"; an unreadable record names its file.
  absl::StatusOr<ContainerRecord> Load(const std::string& id);
  // Locks the sandbox the container runs in and loads both records. A pod member whose sandbox
  // has gone is not running.
  absl::StatusOr<LockedContainer> Lock(const std::string& id, absl::string_view purpose,
                                       bool connect = false);
  // Every container whose record names sandbox `sandbox_id` (read without locks: each is
  // written under that sandbox's lock, or before its container first takes it).
  std::vector<ContainerRecord> Members(const std::string& sandbox_id);
  // Asks the agent about a container that has not stopped; NotRunning() when it has, also when
  // it stopped between the check here and the agent's.
  absl::StatusOr<agent_proto::Message> AskLive(LockedContainer& c, agent_proto::Message request);

 private:
  Sandboxes& sandboxes_;
};

// The status as it is now: a created, running or paused container whose shim has gone has
// stopped; a create that is not in progress (the lock was free) was interrupted.
ContainerStatus LiveStatus(const ContainerRecord& r);

// runc's texts: "container X does not exist"; "container not running" (which containerd maps to
// NotFound on kill).
absl::Status NotExist(const std::string& id);
absl::Status NotRunning();
bool IsNotRunning(const absl::Status& st);

// The virtio-serial port of a container's or an exec's stdio ("<id>" or "<id>/<exec id>"): a
// digest, so that its length does not depend on the id's (engines use 64 hex digits and more).
std::string StdioPortName(const std::string& process);

// Grows the sandbox's VM to what its containers need (runtime/oci/pod.h), `id` counted with
// `resources` instead of what its record says. Checked before anything changes.
absl::Status GrowToFit(ContainerStore& store, SandboxVm& vm, const std::string& id,
                       const oci::Resources& resources);

// Ends a shim (or an exec's) that still runs: the one whose identity the record holds.
void EndShim(const std::optional<ProcessIdentity>& shim);

// Undoes what a pod member added to its sandbox (its processes in the guest, shims, ports,
// shares, host cgroups) and removes its record. Each step tolerates having been done already,
// so a delete killed half way is finished by the next. The VM keeps its size.
absl::Status RemoveMember(ContainerStore& store, const std::string& id, bool force);

}  // namespace runvm

#endif  // RUNVM_RUNTIME_OCI_CONTAINER_STORE_H_
