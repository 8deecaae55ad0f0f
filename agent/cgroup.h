// The guest's cgroups (v2): one per container, holding its init and its execs, through which the
// agent limits (OCI linux.resources), freezes (pause/resume), measures (stats) and kills it.
//
//   GuestCgroups cgroups("/sys/fs/cgroup");
//   RETURN_IF_ERROR(cgroups.Setup());                       // once; idempotent
//   ASSIGN_OR_RETURN(Fd dir, cgroups.Create("c1", resources));  // clone3 CLONE_INTO_CGROUP
//   RETURN_IF_ERROR(cgroups.Freeze("c1", true, Deadline(5s)));
//
// Layout: <root>/c-<id> (the prefix keeps an id such as "cpu.max" from naming an interface file).
// The controllers the guest kernel offers (cpu, cpuset, memory, pids) are enabled in the root's
// subtree_control; resources naming a controller that is not there are refused with its name.
// Conversions from the OCI (cgroup v1) figures follow runc's for cgroup v2: cpu.weight from
// shares, cpu.max from quota and period, memory.max, memory.low, memory.swap.max (swap minus
// limit), pids.max, cpuset.cpus and cpuset.mems.
#ifndef RUNVM_AGENT_CGROUP_H_
#define RUNVM_AGENT_CGROUP_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/fd.h"
#include "proto/agent_protocol.h"
#include "proto/oci_spec.h"

namespace runvm::agent {

class GuestCgroups {
 public:
  explicit GuestCgroups(std::string root = "/sys/fs/cgroup") : root_(std::move(root)) {}

  // Mounts cgroup2 at the root when no cgroup2 is there, and enables every controller it offers
  // of cpu, cpuset, memory and pids for the containers' cgroups.
  absl::Status Setup();
  // The container's cgroup, made afresh with `resources` applied; an O_DIRECTORY descriptor for
  // clone3's CLONE_INTO_CGROUP.
  absl::StatusOr<Fd> Create(const std::string& id, const oci::Resources& resources);
  // Writes every figure `resources` holds (the caller passes the merged whole).
  absl::Status Apply(const std::string& id, const oci::Resources& resources);
  // Freezes or thaws the cgroup and waits until the kernel says it is so (cgroup.events).
  absl::Status Freeze(const std::string& id, bool frozen, absl::Time deadline);
  absl::StatusOr<agent_proto::CgroupStats> Stats(const std::string& id) const;
  // Kills what is left in it (cgroup.kill), waits until it is empty, and removes it. A cgroup
  // that does not exist is no error.
  absl::Status Remove(const std::string& id, absl::Time deadline);

  std::string Dir(const std::string& id) const { return root_ + "/c-" + id; }

 private:
  absl::Status Write(const std::string& id, const char* file, const std::string& value);
  std::string root_;
};

}  // namespace runvm::agent

#endif  // RUNVM_AGENT_CGROUP_H_
