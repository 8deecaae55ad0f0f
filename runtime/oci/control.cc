// The verbs that change a container in place: start, kill, pause, resume, update.
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status.h"
#include "runtime/oci/container_store.h"
#include "runtime/oci/containers.h"
#include "runtime/oci/signal.h"

namespace runvm {

absl::Status Containers::Start(const std::string& id) {
  ContainerStore s(*sandboxes_);
  ASSIGN_OR_RETURN(LockedContainer o, s.Lock(id, "start"));
  const ContainerStatus status = LiveStatus(o.record);
  if (status == ContainerStatus::kRunning) {
    return absl::FailedPreconditionError("cannot start an already running container");
  }
  if (status != ContainerStatus::kCreated) {
    return absl::FailedPreconditionError("cannot start a container that has stopped");
  }
  const absl::Time deadline = absl::Now() + kAgentTimeout;
  ASSIGN_OR_RETURN(std::unique_ptr<GuestAgent> agent, o.vm->Agent(deadline));
  RETURN_IF_ERROR(agent
                      ->Call({.type = agent_proto::kStartContainer,
                              .fields = agent_proto::ToFields(agent_proto::ContainerRef{id})},
                             deadline)
                      .status());
  o.record.status = ContainerStatus::kRunning;
  return s.Save(o.record);
}
absl::Status Containers::Kill(const std::string& id, const std::string& signal, bool all) {
  ASSIGN_OR_RETURN(int sig, ParseSignal(signal));
  ContainerStore s(*sandboxes_);
  absl::StatusOr<ContainerRecord> peek = s.Load(id);
  const bool vm_paused = peek.ok() && peek->vm_paused;
  ASSIGN_OR_RETURN(LockedContainer o, s.Lock(id, "kill", /*connect=*/vm_paused));
  if (o.record.vm_paused) {
    // The VM runs again (the container stays frozen: paused), so that what the signal does
    // (a SIGKILL ends even a frozen process) reaches the shim.
    RETURN_IF_ERROR(o.vm->ResumeVm());
    o.record.vm_paused = false;
    RETURN_IF_ERROR(s.Save(o.record));
  }
  absl::Status st = s.AskLive(o, {.type = agent_proto::kSignal,
                                  .fields = agent_proto::ToFields(agent_proto::SignalRequest{
                                      .id = id, .signal = sig, .all = all})})
                        .status();
  // runc: with --all, a container with nothing left to signal is no error.
  if (all && IsNotRunning(st)) return absl::OkStatus();
  return st;
}
absl::Status Containers::Pause(const std::string& id) {
  ContainerStore s(*sandboxes_);
  ASSIGN_OR_RETURN(LockedContainer o, s.Lock(id, "pause", /*connect=*/true));
  const ContainerStatus status = LiveStatus(o.record);
  if (status == ContainerStatus::kPaused)
    return absl::FailedPreconditionError("container already paused");
  if (status != ContainerStatus::kRunning) {
    return absl::FailedPreconditionError(
        absl::StrCat("container not running: ", StatusName(status)));
  }
  RETURN_IF_ERROR(s.AskLive(o, {.type = agent_proto::kPause,
                                .fields = agent_proto::ToFields(agent_proto::ContainerRef{id})})
                      .status());
  // Alone in its sandbox: the whole VM stops as well, and costs the host nothing meanwhile.
  o.record.vm_paused = s.Members(o.record.sandbox_id).size() == 1;
  if (o.record.vm_paused) RETURN_IF_ERROR(o.vm->PauseVm());
  o.record.status = ContainerStatus::kPaused;
  return s.Save(o.record);
}
absl::Status Containers::Resume(const std::string& id) {
  ContainerStore s(*sandboxes_);
  ASSIGN_OR_RETURN(LockedContainer o, s.Lock(id, "resume", /*connect=*/true));
  if (LiveStatus(o.record) != ContainerStatus::kPaused) {
    return absl::FailedPreconditionError("container not paused");
  }
  if (o.record.vm_paused) RETURN_IF_ERROR(o.vm->ResumeVm());
  o.record.vm_paused = false;
  o.record.status = ContainerStatus::kRunning;
  RETURN_IF_ERROR(s.Save(o.record));
  return s
      .AskLive(o, {.type = agent_proto::kResume,
                   .fields = agent_proto::ToFields(agent_proto::ContainerRef{id})})
      .status();
}
absl::Status Containers::Update(const std::string& id, const oci::Resources& update) {
  RETURN_IF_ERROR(update.Validate());
  ContainerStore s(*sandboxes_);
  ASSIGN_OR_RETURN(LockedContainer o, s.Lock(id, "update", /*connect=*/true));
  const ContainerStatus status = LiveStatus(o.record);
  if (status == ContainerStatus::kStopped) return NotRunning();
  if (status == ContainerStatus::kPaused && o.record.vm_paused) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", id, " is paused with its VM: resume it first"));
  }
  oci::Resources merged = o.record.resources;
  merged.Merge(update);
  RETURN_IF_ERROR(merged.Validate());
  RETURN_IF_ERROR(GrowToFit(s, *o.vm, id, merged));
  RETURN_IF_ERROR(s.AskLive(o, {.type = agent_proto::kUpdate,
                                .fields = agent_proto::ToFields(
                                    agent_proto::UpdateRequest{id, oci::ResourcesToJson(update)})})
                      .status());
  o.record.resources = std::move(merged);
  return s.Save(o.record);
}

}  // namespace runvm
