// Host cgroups for what a sandbox runs on the host (QEMU, virtiofsd, the watcher, the shims),
// placed by the OCI spec's cgroupsPath, as Kata places them:
//
//   sandbox_cgroup_only = true   everything in <parent of the sandbox container's cgroupsPath>/
//                                runvm_<sandbox id>: the caller sizes the pod's cgroup for the VM.
//   sandbox_cgroup_only = false  each shim in its container's cgroupsPath (last element prefixed
//                                runvm_); QEMU and its helpers in /runvm_overhead/<sandbox id>,
//                                except the vCPU threads, which go to the sandbox container's
//                                cgroup (cgroup v1 only: v2 cannot split a process's threads
//                                across domains, so there QEMU goes whole to the sandbox's).
//
//   ASSIGN_OR_RETURN(HostCgroups cg, HostCgroups::Detect());
//   ASSIGN_OR_RETURN(std::string path, ResolveCgroupsPath(spec.linux.cgroups_path, systemd));
//   std::vector<std::string> made = cg.ToMake(path);  // recorded first, removed on delete
//   RETURN_IF_ERROR(cg.Create(path));
//   RETURN_IF_ERROR(cg.Join(path, ::getpid()));   // what this process starts is born there
//
// Layouts: unified (cgroup2 at the root), hybrid (v1 hierarchies plus cgroup2 at unified/) and
// legacy (v1 only). A cgroup is made in every hierarchy there is (v1: each mounted one, with
// cpuset.cpus and cpuset.mems copied from the parent as the kernel requires; hybrid: unified too).
#ifndef RUNVM_RUNTIME_HOST_CGROUPS_H_
#define RUNVM_RUNTIME_HOST_CGROUPS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace runvm {

// cgroupsPath as runc reads it: with --systemd-cgroup, "slice:prefix:name" becomes
// /<the slice's parents>/<slice>/<prefix>-<name>.scope ("a-b.slice" sits in "a.slice"; an empty
// slice is system.slice); otherwise an absolute path, taken as it is. Relative or malformed
// paths are refused naming the field. Empty stays empty (no host cgroup).
absl::StatusOr<std::string> ResolveCgroupsPath(const std::string& cgroups_path, bool systemd);

class HostCgroups {
 public:
  // From /proc/self/mountinfo (or `mountinfo` for tests, whose mount points may be anywhere).
  static absl::StatusOr<HostCgroups> Detect(const std::string& mountinfo = "/proc/self/mountinfo");

  bool unified() const { return unified_; }
  // The hierarchies' mount points (v1 ones first, then the cgroup2 one, if any).
  const std::vector<std::string>& hierarchies() const { return dirs_; }

  // The cgroups Create(path) would make: `path` and its parents that do not exist, parents first.
  std::vector<std::string> ToMake(const std::string& path) const;
  // Makes `path` (absolute in cgroup terms, "/kubepods/pod1/runvm_p1") and its parents in every
  // hierarchy. Existing is fine.
  absl::Status Create(const std::string& path) const;
  // Moves process `pid` (all its threads) into `path` in every hierarchy.
  absl::Status Join(const std::string& path, pid_t pid) const;
  // Moves one thread (v1 only; Unimplemented under unified).
  absl::Status JoinThread(const std::string& path, pid_t tid) const;
  // Removes the cgroups ToMake named, deepest first. One that is gone already is fine; one that
  // holds another container's cgroup stays (it is shared now); one whose processes do not leave
  // within seconds is an error naming the directory and the pids.
  absl::Status Remove(const std::vector<std::string>& made,
                      absl::Duration patience = absl::Seconds(5)) const;

 private:
  bool unified_ = false;
  std::vector<std::string> dirs_;
  std::vector<bool> cpuset_;  // per hierarchy: holds the cpuset controller
};

// Where a container's host processes go, decided from its resolved cgroupsPath before anything
// is made; the caller records it (to_make first), then makes the cgroups.
struct Placement {
  std::string cgroup;  // the container's: its shims; for the VM's owner also the pod's vCPUs (v1)
                       // or the whole VMM
  std::string vmm;     // where QEMU and its helpers go (the VM's owner only)
  bool sandbox_cgroup_only = false;
  std::vector<std::string> to_make;  // cgroups that do not exist yet, parents first
};
// The container that owns the VM: with sandbox_cgroup_only everything in
// <parent>/runvm_<id>; otherwise the pod in <parent>/runvm_<name> and, under v1, the VMM outside
// it in /runvm_overhead/<id> (only the vCPU threads join the pod's cgroup: PlaceVcpus).
Placement PlaceSandboxOwner(const HostCgroups& cg, const std::string& cgroups_path,
                            const std::string& id, bool sandbox_cgroup_only);
// A pod member with a cgroup of its own: <parent>/runvm_<name>.
Placement PlaceMember(const HostCgroups& cg, const std::string& cgroups_path);

// Puts process `pid` into `cgroup` (nothing for "").
absl::Status JoinHostCgroup(const std::string& cgroup, pid_t pid);
// Puts the VM's vCPU threads into `cgroup` under v1 (nothing under v2, which cannot split them).
absl::Status PlaceVcpus(const std::string& cgroup, const std::vector<int>& threads);
// Removes the cgroups a container made (its processes have ended); nothing for none.
absl::Status RemoveHostCgroups(const std::vector<std::string>& made);

}  // namespace runvm

#endif  // RUNVM_RUNTIME_HOST_CGROUPS_H_
