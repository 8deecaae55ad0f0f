// The container record (<root>/<id>/container.json, format "runvm.container", docs/state.md)
// and what `state` prints.
#ifndef RUNVM_RUNTIME_OCI_RECORD_H_
#define RUNVM_RUNTIME_OCI_RECORD_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/process_identity.h"
#include "nlohmann/json_fwd.hpp"
#include "proto/oci_spec.h"

namespace runvm {

inline constexpr char kContainerFormat[] = "runvm.container";
inline constexpr int kContainerVersion = 1;

// A container's status (runtime-spec "state"; paused as runc has it).
enum class ContainerStatus { kCreating, kCreated, kRunning, kPaused, kStopped };
// "creating", "created", "running", "paused", "stopped".
absl::string_view StatusName(ContainerStatus status);
// InvalidArgument for any other name.
absl::StatusOr<ContainerStatus> ParseContainerStatus(absl::string_view name);

// A process exec'd into a running container, until the next exec finds it finished and
// reclaims its port.
struct ExecRecord {
  std::string id;           // "<container>/<exec id>" is its name in the agent
  std::string port_device;  // hot-plug id of its stdio port
  std::optional<ProcessIdentity> shim;
};

struct ContainerRecord {
  std::string id;
  std::string sandbox_id;
  std::string bundle;                                   // absolute
  std::string rootfs;                                   // absolute, on the host
  std::string created;                                  // RFC 3339, UTC
  ContainerStatus status = ContainerStatus::kCreating;  // as last recorded
  std::map<std::string, std::string> annotations;
  std::vector<std::string> shares;  // mount points this container added in the shared dir
  std::string port_device;          // hot-plug id of its stdio port; "" until plugged
  std::optional<ProcessIdentity> shim;
  int64_t guest_pid = 0;
  std::vector<ExecRecord> execs;
  // linux.resources, with every update merged in: what the pod's size counts (runtime/oci/pod.h).
  oci::Resources resources;
  // pause stopped the VM as well (QMP stop): the sandbox holds this container alone.
  bool vm_paused = false;
  // Host cgroups (runtime/host/cgroups.h): where its shims go (for the container that owns the
  // VM, also where the pod's vCPUs or whole VMM go), the mode it was placed in, and the cgroups
  // it made, removed with it.
  std::string cgroup;
  bool sandbox_cgroup_only = false;
  std::vector<std::string> host_cgroups;
};

nlohmann::json ContainerToJson(const ContainerRecord& record);
absl::StatusOr<ContainerRecord> ContainerFromJson(const nlohmann::json& j);

// What `state` prints.
struct OciState {
  std::string id;
  int pid = 0;  // the shim's; 0 once stopped
  ContainerStatus status = ContainerStatus::kStopped;
  std::string bundle;
  std::string rootfs;
  std::string created;
  std::string owner;
  std::map<std::string, std::string> annotations;
};
// runc's layout: ociVersion, id, pid, status, bundle, rootfs, created, owner, annotations.
nlohmann::ordered_json OciStateToJson(const OciState& state);
std::string OciStateJson(const OciState& state);  // indented as runc prints it

}  // namespace runvm

#endif  // RUNVM_RUNTIME_OCI_RECORD_H_
