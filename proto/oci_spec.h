// The subset of the OCI runtime spec (config.json, version 1.x) that runvm acts on, and its
// codec. Decoding is strict about the kinds of the fields it knows and ignores fields it does not
// (engines add hooks, devices, and more that a VM runtime handles differently or not at all);
// every error names the field by its JSON path ("process.user.uid: expected an unsigned
// integer, got a string").
//
//   ASSIGN_OR_RETURN(oci::Spec spec, oci::ParseSpec(text));
//   RETURN_IF_ERROR(spec.Validate());
#ifndef RUNVM_PROTO_OCI_SPEC_H_
#define RUNVM_PROTO_OCI_SPEC_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace runvm::oci {

struct User {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
  std::optional<uint32_t> umask;
};

struct Capabilities {
  std::vector<std::string> bounding, effective, inheritable, permitted, ambient;
};

struct Rlimit {
  std::string type;  // "RLIMIT_NOFILE"
  uint64_t hard = 0;
  uint64_t soft = 0;
};

struct Process {
  bool terminal = false;
  User user;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  std::optional<Capabilities> capabilities;
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
  std::optional<int> oom_score_adj;
  std::string selinux_label;  // parsed so that it is never silently dropped (not applied)
};

struct Root {
  std::string path;  // relative to the bundle, or absolute
  bool readonly = false;
};

struct Mount {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
};

struct Namespace {
  std::string type;  // pid, network, mount, ipc, uts, user, cgroup, time
  std::string path;  // join this one instead of creating one
};

struct SeccompArg {
  uint32_t index = 0;
  uint64_t value = 0;
  uint64_t value_two = 0;
  std::string op;  // SCMP_CMP_EQ, ...
};

struct SeccompSyscall {
  std::vector<std::string> names;
  std::string action;  // SCMP_ACT_ERRNO, SCMP_ACT_ALLOW, ...
  std::optional<uint32_t> errno_ret;
  std::vector<SeccompArg> args;
};

struct Seccomp {
  std::string default_action;
  std::optional<uint32_t> default_errno_ret;
  std::vector<std::string> architectures;
  std::vector<SeccompSyscall> syscalls;
};

// linux.resources, the part runvm enforces (in the guest's cgroup v2, and by sizing the VM).
// An absent field leaves the current value as it is (update applies only what it names).
struct CpuResources {
  std::optional<uint64_t> shares;
  std::optional<int64_t> quota;  // microseconds per period; -1 or 0: no limit
  std::optional<uint64_t> period;
  std::string cpus;  // cpuset, "0-1"; empty: unchanged
  std::string mems;
};
struct MemoryResources {
  std::optional<int64_t> limit;  // bytes; -1: no limit
  std::optional<int64_t> reservation;
  std::optional<int64_t> swap;  // memory plus swap, bytes; -1: no limit
};
struct PidsResources {
  int64_t limit = 0;  // <= 0: no limit
};
// linux.resources.devices: one rule of the container's device allowlist (the agent adds runc's
// default devices after the spec's, and the last rule that matches decides).
struct DeviceRule {
  bool allow = false;
  std::string type = "a";        // "a" (any), "c" or "b"
  std::optional<int64_t> major;  // absent or -1: any
  std::optional<int64_t> minor;
  std::string access = "rwm";  // some of r, w, m
};
struct Resources {
  std::optional<CpuResources> cpu;
  std::optional<MemoryResources> memory;
  std::optional<PidsResources> pids;
  std::vector<DeviceRule> devices;  // set at create only (update leaves them)

  // `update` over these: the fields `update` names replace these ones.
  void Merge(const Resources& update);
  // Whole vCPUs the CPU limit amounts to (Kata's rule: ceil(quota / period)); 0 without one.
  int Vcpus() const;
  // MiB the memory limit amounts to (rounded up); 0 without one.
  int64_t MemoryMib() const;
  // Negative quotas other than -1, a quota without a period, a zero period.
  absl::Status Validate() const;
};

struct Linux {
  std::vector<Namespace> namespaces;
  std::string cgroups_path;
  std::optional<Resources> resources;
  std::optional<Seccomp> seccomp;
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  std::map<std::string, std::string> sysctl;
  std::string mount_label;  // parsed so that it is never silently dropped (not applied)
};

struct Spec {
  std::string oci_version;
  Process process;
  Root root;
  std::string hostname;
  std::vector<Mount> mounts;
  Linux linux;
  std::map<std::string, std::string> annotations;

  // Rules across fields: args non-empty, cwd absolute, root.path set, known namespace types
  // (each at most once), mount destinations absolute, rlimit types and capability names known.
  absl::Status Validate() const;
};

absl::StatusOr<Spec> ParseSpec(absl::string_view json_text);
std::string SpecToJson(const Spec& spec, int indent = 2);

// An OCI LinuxResources object alone (what `update --resources` reads), with the same rules.
absl::StatusOr<Resources> ParseResources(absl::string_view json_text);
std::string ResourcesToJson(const Resources& resources);

// What `runvm spec` writes: runc's default spec (sh on a terminal, the usual mounts and
// namespaces, the three default capabilities), with hostname "runvm".
Spec DefaultSpec();

}  // namespace runvm::oci

#endif  // RUNVM_PROTO_OCI_SPEC_H_
