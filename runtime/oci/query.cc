// The verbs that only read: state, list, ps, stats (events).
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status.h"
#include "runtime/oci/container_store.h"
#include "runtime/oci/containers.h"

namespace runvm {
namespace {

OciState StateOf(const ContainerRecord& r) {
  OciState out{.id = r.id,
               .status = LiveStatus(r),
               .bundle = r.bundle,
               .rootfs = r.rootfs,
               .created = r.created,
               .annotations = r.annotations};
  if (out.status != ContainerStatus::kStopped && r.shim) out.pid = r.shim->pid;
  return out;
}

}  // namespace

absl::StatusOr<std::vector<agent_proto::ProcessEntry>> Containers::Processes(
    const std::string& id) {
  ContainerStore s(*sandboxes_);
  ASSIGN_OR_RETURN(LockedContainer o, s.Lock(id, "ps"));
  ASSIGN_OR_RETURN(agent_proto::Message reply,
                   s.AskLive(o, {.type = agent_proto::kProcesses,
                                 .fields = agent_proto::ToFields(agent_proto::ContainerRef{id})}));
  ASSIGN_OR_RETURN(agent_proto::ProcessList list, agent_proto::ProcessListFrom(reply));
  return list.processes;
}
absl::StatusOr<agent_proto::CgroupStats> Containers::Stats(const std::string& id, bool after_exit) {
  ContainerStore s(*sandboxes_);
  ASSIGN_OR_RETURN(LockedContainer o, s.Lock(id, "stats"));
  if (o.record.vm_paused) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", id, " is paused with its VM: no figures until it resumes"));
  }
  const agent_proto::Message request = {
      .type = agent_proto::kStats, .fields = agent_proto::ToFields(agent_proto::ContainerRef{id})};
  absl::StatusOr<agent_proto::Message> reply;
  if (after_exit && LiveStatus(o.record) == ContainerStatus::kStopped) {
    const absl::Time deadline = absl::Now() + kAgentTimeout;
    ASSIGN_OR_RETURN(std::unique_ptr<GuestAgent> agent, o.vm->Agent(deadline));
    reply = agent->Call(request, deadline);
  } else {
    reply = s.AskLive(o, request);
  }
  if (!reply.ok()) return reply.status();
  return agent_proto::CgroupStatsFrom(*reply);
}
absl::StatusOr<OciState> Containers::State(const std::string& id) {
  RETURN_IF_ERROR(ValidateSandboxId(id));
  ContainerStore s(*sandboxes_);
  if (::access(s.sandboxes().Dir(id).c_str(), F_OK) != 0) return NotExist(id);
  ASSIGN_OR_RETURN(persist::Lock lock, s.sandboxes().LockShared(id, "state"));
  ASSIGN_OR_RETURN(ContainerRecord r, s.Load(id));
  return StateOf(r);
}
absl::StatusOr<std::vector<OciState>> Containers::List() {
  ContainerStore s(*sandboxes_);
  std::vector<OciState> out;
  ASSIGN_OR_RETURN(std::vector<std::string> names, s.sandboxes().records().List(""));
  for (const std::string& id : names) {
    if (id.front() == '.') continue;
    // Skipped: not a container (a bare sandbox), gone meanwhile, or unreadable.
    absl::StatusOr<ContainerRecord> r = s.Load(id);
    if (r.ok()) out.push_back(StateOf(*r));
  }
  return out;
}

}  // namespace runvm
