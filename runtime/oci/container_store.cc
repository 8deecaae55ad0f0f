#include "runtime/oci/container_store.h"

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/digest.h"
#include "base/log.h"
#include "base/process.h"
#include "base/status.h"
#include "nlohmann/json.hpp"
#include "runtime/host/cgroups.h"
#include "runtime/oci/bundle.h"
#include "runtime/oci/pod.h"

namespace runvm {
namespace {

using Json = nlohmann::json;

std::string Key(const std::string& id) { return id + "/container.json"; }

constexpr char kNotRunning[] = "container not running";

}  // namespace

absl::Status NotExist(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("container ", id, " does not exist"));
}
absl::Status NotRunning() { return absl::FailedPreconditionError(kNotRunning); }
bool IsNotRunning(const absl::Status& st) {
  return absl::IsFailedPrecondition(st) && st.message() == kNotRunning;
}

std::string StdioPortName(const std::string& process) { return "io-" + ShortDigest(process); }

ContainerStatus LiveStatus(const ContainerRecord& r) {
  if (r.status == ContainerStatus::kCreated || r.status == ContainerStatus::kRunning ||
      r.status == ContainerStatus::kPaused) {
    return r.shim && IsAlive(*r.shim) ? r.status : ContainerStatus::kStopped;
  }
  return ContainerStatus::kStopped;
}

absl::Status ContainerStore::Save(const ContainerRecord& r) {
  return sandboxes_.records().Save(Key(r.id), kContainerFormat, kContainerVersion,
                                   ContainerToJson(r));
}

absl::StatusOr<ContainerRecord> ContainerStore::Load(const std::string& id) {
  absl::StatusOr<Json> j = sandboxes_.records().Load(Key(id), kContainerFormat, kContainerVersion);
  if (absl::IsNotFound(j.status())) return NotExist(id);
  if (!j.ok()) return j.status();
  absl::StatusOr<ContainerRecord> r = ContainerFromJson(*j);
  if (!r.ok()) return Annotate(r.status(), sandboxes_.records().PathOf(Key(id)));
  return r;
}

absl::StatusOr<LockedContainer> ContainerStore::Lock(const std::string& id,
                                                     absl::string_view purpose, bool connect) {
  RETURN_IF_ERROR(ValidateSandboxId(id));
  if (::access(sandboxes_.Dir(id).c_str(), F_OK) != 0) return NotExist(id);
  // Which sandbox: read without its lock (records are replaced atomically), then again under it.
  ASSIGN_OR_RETURN(ContainerRecord first, Load(id));
  absl::StatusOr<std::unique_ptr<SandboxVm>> vm =
      sandboxes_.Open(first.sandbox_id, purpose, connect);
  if (absl::IsNotFound(vm.status())) {
    return first.sandbox_id == id ? NotExist(id) : NotRunning();
  }
  if (!vm.ok()) return vm.status();
  ASSIGN_OR_RETURN(ContainerRecord r, Load(id));
  return LockedContainer{*std::move(vm), std::move(r)};
}

std::vector<ContainerRecord> ContainerStore::Members(const std::string& sandbox_id) {
  std::vector<ContainerRecord> out;
  absl::StatusOr<std::vector<std::string>> names = sandboxes_.records().List("");
  if (!names.ok()) return out;
  for (const std::string& name : *names) {
    if (name.front() == '.') continue;
    absl::StatusOr<ContainerRecord> r = Load(name);
    if (r.ok() && r->sandbox_id == sandbox_id) out.push_back(*std::move(r));
  }
  return out;
}

absl::StatusOr<agent_proto::Message> ContainerStore::AskLive(LockedContainer& c,
                                                             agent_proto::Message request) {
  if (LiveStatus(c.record) == ContainerStatus::kStopped) return NotRunning();
  if (c.record.vm_paused && request.type != agent_proto::kResume) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", c.record.id, " is paused with its VM: resume it first"));
  }
  const absl::Time deadline = absl::Now() + kAgentTimeout;
  ASSIGN_OR_RETURN(std::unique_ptr<GuestAgent> agent, c.vm->Agent(deadline));
  absl::StatusOr<agent_proto::Message> reply = agent->Call(std::move(request), deadline);
  if (!reply.ok() && absl::StrContains(reply.status().message(), "is not running")) {
    return NotRunning();
  }
  return reply;
}

absl::Status GrowToFit(ContainerStore& store, SandboxVm& vm, const std::string& id,
                       const oci::Resources& resources) {
  RETURN_IF_ERROR(vm.CheckRunning());
  const qemu::RunningVm& running = *vm.record().vm;
  std::vector<oci::Resources> all = {resources};
  for (const ContainerRecord& m : store.Members(vm.record().id)) {
    if (m.id != id) all.push_back(m.resources);
  }
  const VmSize want = PodSize(running, all);
  RETURN_IF_ERROR(CheckFits(want, running, "container " + id));
  const VmSize have = CurrentSize(running);
  if (want.vcpus > have.vcpus) {
    RETURN_IF_ERROR(vm.AddVcpus(want.vcpus - have.vcpus).status());
    // sandbox_cgroup_only = false under cgroup v1: the new vCPU threads join the cgroup of the
    // container that owns the VM, the rest of QEMU stays out.
    absl::StatusOr<ContainerRecord> owner = store.Load(vm.record().id);
    if (owner.ok() && !owner->sandbox_cgroup_only && !owner->cgroup.empty()) {
      ASSIGN_OR_RETURN(std::vector<int> threads, vm.VcpuThreads());
      RETURN_IF_ERROR(PlaceVcpus(owner->cgroup, threads));
    }
  }
  if (want.memory_mib > have.memory_mib) {
    RETURN_IF_ERROR(vm.AddMemory(want.memory_mib - have.memory_mib).status());
  }
  return absl::OkStatus();
}

void EndShim(const std::optional<ProcessIdentity>& shim) {
  if (!shim) return;
  absl::StatusOr<Fd> pidfd = OpenVerifiedPidfd(*shim);
  if (!pidfd.ok()) return;
  (void)SignalPidfd(pidfd->get(), SIGKILL);
  (void)WaitPidfdExit(pidfd->get(), shim->pid, absl::Now() + absl::Seconds(5));
}

// The member's binds in the shared directory, last first.
absl::Status UnbindShares(const ContainerRecord& r, const std::string& id) {
  for (auto it = r.shares.rbegin(); it != r.shares.rend(); ++it) {
    RETURN_IF_ERROR(Annotate(Unbind(*it), "delete container " + id));
  }
  return absl::OkStatus();
}

absl::Status RemoveMember(ContainerStore& store, const std::string& id, bool force) {
  absl::StatusOr<ContainerRecord> first = store.Load(id);
  if (!first.ok()) {
    // Unreadable: only a forced delete removes it, leaving whatever it had added to its sandbox
    // (unknown now) to go with the sandbox.
    if (!force) return first.status();
  } else {
    absl::StatusOr<std::unique_ptr<SandboxVm>> opened =
        store.sandboxes().Open(first->sandbox_id, "delete", /*connect=*/true);
    if (opened.ok()) {
      SandboxVm& vm = **opened;
      ASSIGN_OR_RETURN(ContainerRecord r, store.Load(id));
      const ContainerStatus status = LiveStatus(r);
      if (!force && (status == ContainerStatus::kRunning || status == ContainerStatus::kPaused)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "cannot delete container ", id, " that is not stopped: ", StatusName(status)));
      }
      const bool running = vm.CheckRunning().ok();
      if (running) {
        if (r.vm_paused) (void)vm.ResumeVm();
        const absl::Time deadline = absl::Now() + kAgentTimeout;
        absl::StatusOr<std::unique_ptr<GuestAgent>> agent = vm.Agent(deadline);
        if (agent.ok()) {
          absl::StatusOr<agent_proto::Message> destroyed =
              (*agent)->Call({.type = agent_proto::kDestroy,
                              .fields = agent_proto::ToFields(agent_proto::ContainerRef{id})},
                             deadline);
          if (!destroyed.ok() &&
              !absl::StrContains(destroyed.status().message(), "does not exist")) {
            // The guest's word only: a forced delete says it and goes on (the container's
            // processes go with the VM at the latest).
            if (!force) return Annotate(destroyed.status(), "delete container " + id);
            LogWarning(absl::StrCat("delete --force container ", id, ": ",
                                    destroyed.status().message(), "; going on"));
          }
        } else if (force) {
          LogWarning(absl::StrCat("delete --force container ", id, ": ", agent.status().message(),
                                  "; going on"));
        }
      }
      EndShim(r.shim);
      for (const ExecRecord& e : r.execs) EndShim(e.shim);
      RETURN_IF_ERROR(Annotate(RemoveHostCgroups(r.host_cgroups), "delete container " + id));
      // A VM that cannot be changed now (stopped, or QMP unreachable) keeps the ports recorded:
      // they go with it.
      if (vm.CheckCanPlug().ok()) {
        std::vector<std::string> ports = {r.port_device};
        for (const ExecRecord& e : r.execs) ports.push_back(e.port_device);
        for (const std::string& port : ports) {
          if (port.empty() || !vm.record().vm->hotplug.Find(port)) continue;
          absl::Status unplugged =
              Annotate(vm.Unplug(port), absl::StrCat("delete container ", id, ": its port"));
          if (!unplugged.ok() && !force) return unplugged;
          if (!unplugged.ok()) LogWarning(absl::StrCat(unplugged.message(), "; going on"));
        }
      }
      RETURN_IF_ERROR(UnbindShares(r, id));
    } else if (!absl::IsNotFound(opened.status())) {
      if (!force) return opened.status();
      // The sandbox cannot be opened (busy past the lock's wait, or unreadable): what is the
      // member's own still goes; its port stays with the VM.
      LogWarning(absl::StrCat("delete --force container ", id, ": ", opened.status().message(),
                              "; removing what is its own"));
      EndShim(first->shim);
      for (const ExecRecord& e : first->execs) EndShim(e.shim);
      RETURN_IF_ERROR(Annotate(RemoveHostCgroups(first->host_cgroups), "delete container " + id));
      RETURN_IF_ERROR(UnbindShares(*first, id));
    }
    // A sandbox that is gone took everything the member had added with it.
  }
  std::error_code ec;
  std::filesystem::remove_all(store.sandboxes().Dir(id), ec);
  if (ec) return ErrnoError(ec.value(), "remove " + store.sandboxes().Dir(id));
  return absl::OkStatus();
}

}  // namespace runvm
