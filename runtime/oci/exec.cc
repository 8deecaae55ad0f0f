// `exec`: a further process in a running container, with its own port and shim.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "runtime/host/cgroups.h"
#include "runtime/oci/bundle.h"
#include "runtime/oci/container_store.h"
#include "runtime/oci/containers.h"
#include "runtime/oci/shim.h"

namespace runvm {
namespace {

std::string RandomHex() {
  absl::StatusOr<std::string> uuid = ReadFile("/proc/sys/kernel/random/uuid", 64);
  std::string hex = uuid.ok() ? *uuid : absl::StrCat(::getpid());
  hex.erase(std::remove(hex.begin(), hex.end(), '-'), hex.end());
  return hex.substr(0, 12);
}

// Earlier execs that have finished give their ports back (a sandbox has 30).
absl::Status ReclaimFinishedExecs(ContainerStore& store, LockedContainer& c, GuestAgent& agent,
                                  absl::Time deadline) {
  ContainerRecord& r = c.record;
  for (auto it = r.execs.begin(); it != r.execs.end();) {
    if (it->shim && IsAlive(*it->shim)) {
      ++it;
      continue;
    }
    (void)agent.Call({.type = agent_proto::kDestroy,
                      .fields = agent_proto::ToFields(agent_proto::ContainerRef{it->id})},
                     deadline);
    if (absl::Status st = c.vm->Unplug(it->port_device); !st.ok()) {
      LogWarning(absl::StrCat("exec ", it->id, ": its port stays: ", st.message()));
    }
    it = r.execs.erase(it);
  }
  return store.Save(r);
}

}  // namespace

absl::StatusOr<Child> Containers::Exec(const ExecRequest& req) {
  RETURN_IF_ERROR(ValidateSandboxId(req.id));
  ContainerStore store(*sandboxes_);
  absl::StatusOr<LockedContainer> locked = store.Lock(req.id, "exec", /*connect=*/true);
  if (IsNotRunning(locked.status())) {
    return absl::FailedPreconditionError("cannot exec in a stopped container");
  }
  if (!locked.ok()) return locked.status();
  LockedContainer& c = *locked;
  ContainerRecord& r = c.record;
  const ContainerStatus status = LiveStatus(r);
  if (status == ContainerStatus::kStopped) {
    return absl::FailedPreconditionError("cannot exec in a stopped container");
  }
  if (status == ContainerStatus::kPaused) {
    return absl::FailedPreconditionError("cannot exec in a paused container");
  }
  ASSIGN_OR_RETURN(std::string spec_json, ExecSpec(r.bundle, req));
  const absl::Time deadline = absl::Now() + kAgentTimeout;
  ASSIGN_OR_RETURN(std::unique_ptr<GuestAgent> agent, c.vm->Agent(deadline));
  RETURN_IF_ERROR(ReclaimFinishedExecs(store, c, *agent, deadline));

  // The port is recorded once plugged; the process is created in the guest, then its shim.
  const std::string name = req.id + "/" + RandomHex();
  const std::string port_name = StdioPortName(name);
  ASSIGN_OR_RETURN(qemu::PluggedDevice port, c.vm->AddSerialPort(port_name));
  r.execs.push_back({.id = name, .port_device = port.id});
  RETURN_IF_ERROR(store.Save(r));
  ASSIGN_OR_RETURN(agent_proto::Message reply,
                   agent->Call({.type = agent_proto::kExecProcess,
                                .fields = agent_proto::ToFields(agent_proto::CreateContainer{
                                    .id = name, .spec_json = spec_json, .stdio_port = port_name})},
                               deadline));
  RETURN_IF_ERROR(agent_proto::CreatedFrom(reply).status());
  ASSIGN_OR_RETURN(
      Child child,
      StartShim({.self_exe = options_.self_exe,
                 .flags = options_.shim_flags,
                 .name = name,
                 .port_socket = port.source,
                 .console_socket = req.console_socket.empty() ? "" : Absolute(req.console_socket),
                 .detach = req.detach,
                 .run_dir = c.vm->record().vm->run_dir}));
  RETURN_IF_ERROR(JoinHostCgroup(r.cgroup, child.pid()));
  ASSIGN_OR_RETURN(r.execs.back().shim, ReadProcessIdentity(child.pid()));
  RETURN_IF_ERROR(store.Save(r));
  if (!req.pid_file.empty()) {
    RETURN_IF_ERROR(WriteFileAtomic(Absolute(req.pid_file), absl::StrCat(child.pid()), 0644));
  }
  return child;
}

}  // namespace runvm
