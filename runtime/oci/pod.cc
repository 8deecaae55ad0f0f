#include "runtime/oci/pod.h"

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "hypervisor/qemu/hotplug_state.h"
#include "runtime/sandbox/store.h"

namespace runvm {
namespace {

constexpr int64_t kMiB = 1 << 20;

struct Marked {
  std::string type, sandbox_id;
  const char* type_key = "";
  const char* id_key = "";
};

}  // namespace

absl::StatusOr<PodRole> PodRoleOf(const std::string& id,
                                  const std::map<std::string, std::string>& annotations) {
  auto get = [&](const char* key) {
    auto it = annotations.find(key);
    return it == annotations.end() ? std::string() : it->second;
  };
  Marked m;
  for (auto [type_key, id_key] : {std::pair{kCriContainerType, kCriSandboxId},
                                  std::pair{kCrioContainerType, kCrioSandboxId}}) {
    const std::string type = get(type_key), sandbox = get(id_key);
    if (type.empty() && sandbox.empty()) continue;
    if (!m.type_key[0]) {
      m = {type, sandbox, type_key, id_key};
    } else if (type != m.type || sandbox != m.sandbox_id) {
      return absl::InvalidArgumentError(absl::StrCat("annotations ", m.type_key, "/", m.id_key,
                                                     " and ", type_key, "/", id_key, " disagree"));
    }
  }
  if (!m.type_key[0]) return PodRole{PodRole::kStandalone, id};
  if (m.type == "sandbox") {
    if (!m.sandbox_id.empty() && m.sandbox_id != id) {
      return absl::InvalidArgumentError(
          absl::StrCat("annotation ", m.id_key, ": \"", m.sandbox_id, "\" on sandbox container ",
                       id, " (a sandbox container's sandbox id is its own)"));
    }
    return PodRole{PodRole::kSandbox, id};
  }
  if (m.type == "container") {
    if (m.sandbox_id.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "annotation ", m.id_key, " is missing: container ", id, " names no sandbox"));
    }
    if (m.sandbox_id == id) {
      return absl::InvalidArgumentError(absl::StrCat("annotation ", m.id_key, ": container ", id,
                                                     " names itself as its sandbox"));
    }
    // The id names a directory under the root: checked like any container id, never a path.
    RETURN_IF_ERROR(
        Annotate(ValidateSandboxId(m.sandbox_id), absl::StrCat("annotation ", m.id_key)));
    return PodRole{PodRole::kMember, m.sandbox_id};
  }
  return absl::InvalidArgumentError(absl::StrCat("annotation ", m.type_key, ": \"", m.type,
                                                 "\" is neither sandbox nor container"));
}

VmSize CurrentSize(const qemu::RunningVm& vm) {
  VmSize s{static_cast<int>(vm.config.default_vcpus), vm.config.default_memory};
  for (const qemu::PluggedDevice& d : vm.hotplug.devices) {
    if (d.kind == qemu::kKindCpu) ++s.vcpus;
    if (d.kind == qemu::kKindDimm || d.kind == qemu::kKindVirtioMem) {
      s.memory_mib += d.size_bytes / kMiB;
    }
  }
  return s;
}

VmSize PodSize(const qemu::RunningVm& vm, const std::vector<oci::Resources>& containers) {
  VmSize s{static_cast<int>(vm.config.default_vcpus), vm.config.default_memory};
  for (const oci::Resources& r : containers) {
    s.vcpus += r.Vcpus();
    s.memory_mib += r.MemoryMib();
  }
  return s;
}

absl::Status CheckFits(const VmSize& size, const qemu::RunningVm& vm, const std::string& what) {
  if (size.vcpus > vm.config.default_maxvcpus) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, ": the pod would need ", size.vcpus, " vCPUs (default_vcpus ",
        vm.config.default_vcpus, " plus its containers' CPU limits); default_maxvcpus is ",
        vm.config.default_maxvcpus));
  }
  if (size.memory_mib > vm.max_memory_mib) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, ": the pod would need ", size.memory_mib, " MiB of memory (default_memory ",
        vm.config.default_memory, " plus its containers' memory limits); the VM's maxmem is ",
        vm.max_memory_mib, " MiB"));
  }
  return absl::OkStatus();
}

absl::Status MapNamespaces(const PodRole& role, int64_t sandbox_guest_pid,
                           std::vector<oci::Namespace>& namespaces) {
  static const std::map<std::string, std::string> kProcName = {
      {"ipc", "ipc"}, {"uts", "uts"}, {"pid", "pid"}, {"cgroup", "cgroup"}};
  for (auto it = namespaces.begin(); it != namespaces.end();) {
    if (it->path.empty()) {
      ++it;
      continue;
    }
    if (it->type == "network") {
      it = namespaces.erase(it);
      continue;
    }
    auto name = kProcName.find(it->type);
    if (role.kind != PodRole::kMember || name == kProcName.end() || sandbox_guest_pid <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("linux.namespaces: the ", it->type, " namespace ", it->path,
                       " is the host's; in the VM a container can only share its pod sandbox's"));
    }
    it->path = absl::StrCat("/proc/", sandbox_guest_pid, "/ns/", name->second);
    ++it;
  }
  return absl::OkStatus();
}

}  // namespace runvm
