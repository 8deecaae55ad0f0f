#include "hypervisor/qemu/hotplug.h"

#include "hypervisor/qemu/hotplug_internal.h"

#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/failpoint.h"
#include "base/status.h"
#include "devices/block.h"
#include "devices/tap.h"
#include "devices/vfio.h"
#include "hypervisor/qemu/command_line.h"
#include "hypervisor/qmp/client.h"

namespace runvm::qemu {

using Json = nlohmann::json;
using namespace hotplug_internal;  // NOLINT: the files of one class

const PluggedDevice* HotplugState::Find(const std::string& id) const {
  auto it = std::find_if(devices.begin(), devices.end(),
                         [&](const PluggedDevice& d) { return d.id == id; });
  return it == devices.end() ? nullptr : &*it;
}

PluggedDevice* HotplugState::Find(const std::string& id) {
  return const_cast<PluggedDevice*>(std::as_const(*this).Find(id));
}

Hotplug::Hotplug(qmp::Client& qmp, RunningVm& vm, HotplugOptions options)
    : qmp_(qmp), vm_(vm), options_(std::move(options)) {}

absl::Status Hotplug::Checkpoint() {
  if (!options_.checkpoint) return absl::OkStatus();
  return Annotate(options_.checkpoint(), absl::StrCat("sandbox ", vm_.sandbox_id, ": save"));
}

absl::Status Hotplug::Intend(const char* op, absl::string_view step, const PluggedDevice& device) {
  const std::optional<HotplugIntent>& pending = vm_.hotplug.intent;
  if (pending && (pending->op != op || pending->device.id != device.id)) {
    return absl::FailedPreconditionError(absl::StrCat(device.id, ": the interrupted ", pending->op,
                                                      " of ", pending->device.id, " (at ",
                                                      pending->step, ") is not reconciled yet"));
  }
  vm_.hotplug.intent = HotplugIntent{.op = op, .step = std::string(step), .device = device};
  RETURN_IF_ERROR(Checkpoint());
  if (op == absl::string_view(kIntentPlug)) {
    RUNVM_FAILPOINT("hotplug.plug.after-intent");
  } else if (op == absl::string_view(kIntentUnplug)) {
    RUNVM_FAILPOINT("hotplug.unplug.after-intent");
  } else {
    RUNVM_FAILPOINT("hotplug.resize.after-intent");
  }
  return absl::OkStatus();
}

absl::Status Hotplug::Settle(absl::Status result) {
  if (!vm_.hotplug.intent) return result;
  const std::string id = vm_.hotplug.intent->device.id;
  vm_.hotplug.intent.reset();
  absl::Status saved = Checkpoint();
  if (saved.ok()) return result;
  if (result.ok()) {
    return Annotate(saved, absl::StrCat(id,
                                        ": done in QEMU, but not recorded; the next invocation "
                                        "reconciles the record with QEMU"));
  }
  return absl::Status(result.code(), absl::StrCat(result.message(), "; and ", saved.message()));
}

absl::Status Hotplug::AddBackend(UndoLog& undo, const PluggedDevice& device,
                                 absl::string_view command, const Json& args, std::string what,
                                 absl::string_view undo_command, Json undo_args) {
  absl::Status st = Intend(kIntentPlug, command, device);
  if (st.ok()) st = Command(device.id, command, args).status();
  if (!st.ok()) return undo.Undo(st);
  undo.Add(std::move(what),
           [this, id = device.id, reverse = std::string(undo_command),
            undo_args = std::move(undo_args)] { return Command(id, reverse, undo_args).status(); });
  RUNVM_FAILPOINT("hotplug.plug.after-backend");
  return absl::OkStatus();
}

absl::StatusOr<Json> Hotplug::Command(absl::string_view device, absl::string_view command,
                                      const Json& args) {
  absl::StatusOr<Json> r = qmp_.Execute(command, args, Deadline());
  if (!r.ok()) return Annotate(r.status(), absl::StrCat(device, ": ", command));
  return r;
}

absl::Status Hotplug::NeedsRootQemu(absl::string_view what) const {
  if (!Confined()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(what, ": QEMU would open it itself, and in sandbox ", vm_.sandbox_id,
                   " QEMU runs as hypervisor_user \"", vm_.config.hypervisor_user,
                   "\" (no privilege); a sandbox for it needs hypervisor_user = \"\""));
}

absl::Status Hotplug::RemoveFdSets(const std::string& device) {
  ASSIGN_OR_RETURN(Json sets, Command(device, "query-fdsets", nullptr));
  for (const Json& set : sets) {
    bool mine = false;
    for (const Json& fd : set.value("fds", Json::array())) mine |= fd.value("opaque", "") == device;
    if (!mine) continue;
    RETURN_IF_ERROR(qmp_.RemoveFd(set.value("fdset-id", int64_t{-1}), std::nullopt, Deadline()));
  }
  return absl::OkStatus();
}

std::string Hotplug::NextId(absl::string_view prefix) {
  std::string id;
  do {
    id = absl::StrCat(prefix, vm_.hotplug.next_index++);
  } while (vm_.hotplug.Find(id) != nullptr);
  return id;
}

absl::StatusOr<PluggedDevice> Hotplug::Commit(PluggedDevice device, const Json& args,
                                              UndoLog& undo) {
  absl::Status st = Intend(kIntentPlug, "device_add", device);
  if (st.ok()) st = Command(device.id, "device_add", args).status();
  if (!st.ok()) return undo.Undo(st);
  RUNVM_FAILPOINT("hotplug.plug.after-device-add");
  device.fd_names.clear();  // whatever fds the intent named, the backend has taken them
  vm_.hotplug.devices.push_back(device);
  RETURN_IF_ERROR(Settle());
  return device;
}

absl::Status Hotplug::Remove(const std::string& id) {
  RETURN_IF_ERROR(FinishPendingUnplugs());
  PluggedDevice* d = vm_.hotplug.Find(id);
  if (d == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("device ", id, ": not plugged into sandbox ", vm_.sandbox_id));
  }
  if (d->kind == kKindCpu) RETURN_IF_ERROR(VcpuUnplugAllowed());
  if (d->kind == kKindVirtioMem) {
    return absl::FailedPreconditionError(
        absl::StrCat("device ", id, ": the virtio-mem device is resized, not unplugged"));
  }
  return Unplug(id);
}

absl::Status Hotplug::Unplug(const std::string& id) {
  RETURN_IF_ERROR(Intend(kIntentUnplug, "device_del", *vm_.hotplug.Find(id)));
  absl::Status st = DeleteDevice(*vm_.hotplug.Find(id));
  // Refused: the device stays; not in time: it is recorded as pending. Either way, settled.
  if (!st.ok()) return qmp_.health().ok() ? Settle(st) : st;
  RETURN_IF_ERROR(Intend(kIntentUnplug, "teardown", *vm_.hotplug.Find(id)));
  RUNVM_FAILPOINT("hotplug.unplug.after-device-gone");
  return Settle(Release(id));
}

absl::StatusOr<std::set<std::string>> Hotplug::PeripheralIds(absl::string_view device) {
  ASSIGN_OR_RETURN(Json children, Command(device, "qom-list", {{"path", "/machine/peripheral"}}));
  std::set<std::string> ids;
  for (const Json& c : children) ids.insert(c.value("name", ""));
  return ids;
}

absl::Status Hotplug::DeleteDevice(PluggedDevice& device) {
  const std::string id = device.id;
  using WaiterId = qmp::Client::WaiterId;
  WaiterId deleted = qmp_.ExpectEvent("DEVICE_DELETED", {{"device", id}});
  WaiterId refused = qmp_.ExpectEvent("DEVICE_UNPLUG_GUEST_ERROR", {{"device", id}});
  const Json ost_match = {{"info", {{"device", id}}}};
  // An eject report may name no device (QEMU 7.2 sends it for a CPU after the device is gone).
  const Json eject_match = {{"info", {{"source", kOstSourceEject}}}};
  WaiterId ost = qmp_.ExpectEvent("ACPI_DEVICE_OST", ost_match);
  WaiterId eject = qmp_.ExpectEvent("ACPI_DEVICE_OST", eject_match);
  auto cancel = [&] {
    for (WaiterId w : {deleted, refused, ost, eject}) qmp_.CancelEvent(w);
  };
  absl::Status sent = Command(id, "device_del", {{"id", id}}).status();
  // Asked before a crash: the guest is on it, and the wait below is all that is left.
  if (UnplugAlreadyRequested(sent)) sent = absl::OkStatus();
  if (sent.ok()) RUNVM_FAILPOINT("hotplug.unplug.after-device-del");
  if (!sent.ok()) {
    cancel();
    // Already gone (a pending unplug that finished meanwhile): nothing left to wait for.
    if (qmp::HasErrorClass(sent, "DeviceNotFound")) return absl::OkStatus();
    return sent;
  }
  const absl::Time deadline = absl::Now() + options_.unplug_timeout;
  while (true) {
    // QEMU 7.2 sends no DEVICE_DELETED for an unplugged vCPU (only for its lapic child), so the
    // wait is cut into slices and QEMU's own view, qom-list, decides between them.
    const absl::Time slice = std::min(deadline, absl::Now() + kUnplugRecheck);
    absl::StatusOr<qmp::Client::Fired> fired =
        qmp_.WaitAnyEvent({deleted, refused, ost, eject}, slice);
    bool recheck = false;
    if (!fired.ok()) {
      if (!absl::IsDeadlineExceeded(fired.status())) {
        cancel();
        return Annotate(fired.status(), id + ": waiting for DEVICE_DELETED");
      }
      recheck = true;
    } else if (fired->id == deleted) {
      cancel();
      return absl::OkStatus();
    } else if (fired->id == refused) {
      cancel();
      return absl::FailedPreconditionError(
          absl::StrCat(id,
                       ": the guest refused the unplug (DEVICE_UNPLUG_GUEST_ERROR); the "
                       "device stays plugged"));
    } else {
      const Json info = fired->event.data.value("info", Json::object());
      const int64_t status = JsonInt(info, "status", 0);
      if (info.value("device", "") == id && status != kOstSuccess &&
          status != kOstEjectInProgress) {
        cancel();
        return absl::FailedPreconditionError(
            absl::StrCat(id, ": the guest refused the unplug (ACPI _OST status 0x",
                         absl::Hex(status), "); the device stays plugged"));
      }
      recheck = JsonInt(info, "source", 0) == kOstSourceEject && status == kOstSuccess;
      WaiterId& again = fired->id == ost ? ost : eject;
      again = qmp_.ExpectEvent("ACPI_DEVICE_OST", fired->id == ost ? ost_match : eject_match);
    }
    if (recheck) {
      absl::StatusOr<std::set<std::string>> present = PeripheralIds(id);
      if (!present.ok()) {
        cancel();
        return present.status();
      }
      if (present->count(id) == 0) {
        cancel();
        return absl::OkStatus();
      }
    }
    if (absl::Now() >= deadline) {
      cancel();
      device.unplug_pending = true;
      return absl::DeadlineExceededError(
          absl::StrCat(id, ": unplug pending: the guest has not released the device within ",
                       absl::FormatDuration(options_.unplug_timeout),
                       "; it stays recorded and is finished once QEMU reports it gone"));
    }
  }
}

absl::Status Hotplug::Release(const std::string& id) {
  PluggedDevice* found = vm_.hotplug.Find(id);
  if (found == nullptr) return absl::OkStatus();
  PluggedDevice d = *found;
  // The device is gone from QEMU: forget it first, so its slot is free whatever happens below.
  vm_.hotplug.devices.erase(vm_.hotplug.devices.begin() + (found - vm_.hotplug.devices.data()));
  return Teardown(d);
}

absl::Status Hotplug::RunOnceReleased(absl::string_view device, absl::string_view command,
                                      const Json& args) {
  const absl::Time deadline = absl::Now() + kBackendRelease;
  for (;;) {
    absl::Status st = Command(device, command, args).status();
    if (st.ok() || !absl::StrContains(st.message(), "is in use") || absl::Now() >= deadline) {
      return st;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::Status Hotplug::Teardown(const PluggedDevice& d) {
  std::vector<std::string> failed;
  auto teardown = [&](const std::string& name, absl::string_view command, const Json& args) {
    if (name.empty()) return;
    absl::Status st = RunOnceReleased(d.id, command, args);
    if (!st.ok() && !AlreadyGone(st)) {
      failed.push_back(std::string(st.message()));
      return;
    }
    RUNVM_FAILPOINT("hotplug.unplug.after-backend-del");
  };
  teardown(d.node_name, "blockdev-del", {{"node-name", d.node_name}});
  teardown(d.netdev, "netdev_del", {{"id", d.netdev}});
  teardown(d.object, "object-del", {{"id", d.object}});
  teardown(d.chardev, "chardev-remove", {{"id", d.chardev}});
  for (const std::string& fd : d.fd_names) teardown(fd, "closefd", {{"fdname", fd}});
  if (Confined() && (d.kind == kKindVirtioBlk || d.kind == kKindScsi)) {
    if (absl::Status st = RemoveFdSets(d.id); !st.ok()) failed.push_back(std::string(st.message()));
  }
  // A confined QEMU's stdio ports listen on sockets runvm made (QEMU removes its own).
  if (d.kind == kKindSerialPort && !d.source.empty()) (void)::unlink(d.source.c_str());
  if (failed.empty()) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat(d.id, ": unplugged, but its backends remain: ", absl::StrJoin(failed, "; ")));
}

absl::Status Hotplug::FinishPendingUnplugs() {
  bool any = std::any_of(vm_.hotplug.devices.begin(), vm_.hotplug.devices.end(),
                         [](const PluggedDevice& d) { return d.unplug_pending; });
  if (!any) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::set<std::string> present, PeripheralIds("pending unplugs"));
  std::vector<std::string> gone;
  for (const PluggedDevice& d : vm_.hotplug.devices) {
    if (d.unplug_pending && present.count(d.id) == 0) gone.push_back(d.id);
  }
  for (const std::string& id : gone) RETURN_IF_ERROR(Release(id));
  return absl::OkStatus();
}

absl::StatusOr<ReconcileReport> Hotplug::Reconcile() {
  ReconcileReport report;
  const std::string what = "sandbox " + vm_.sandbox_id;
  ASSIGN_OR_RETURN(Json status, Command(what, "query-status", nullptr));
  report.run_state = status.value("status", "");
  ASSIGN_OR_RETURN(std::set<std::string> present, PeripheralIds(what));
  const int64_t next_before = vm_.hotplug.next_index;
  auto advance_past = [&](const std::string& id) {
    vm_.hotplug.next_index = std::max(vm_.hotplug.next_index, HotplugIndex(id) + 1);
  };
  for (const std::string& id : present) advance_past(id);
  const bool had_intent = vm_.hotplug.intent.has_value();
  if (had_intent) {
    const HotplugIntent intent = *vm_.hotplug.intent;
    advance_past(intent.device.id);
    absl::Status rolled = RollIntent(intent, present, report);
    vm_.hotplug.intent.reset();
    if (!rolled.ok()) {
      // Whatever was left is named in the error; the record keeps what QEMU has.
      RETURN_IF_ERROR(Checkpoint());
      return rolled;
    }
  }
  const size_t devices_before = vm_.hotplug.devices.size();
  RETURN_IF_ERROR(FinishPendingUnplugs());
  if (vm_.hotplug.devices.size() != devices_before) {
    report.actions.push_back(
        absl::StrCat(devices_before - vm_.hotplug.devices.size(), " pending unplug(s) finished"));
  }
  RETURN_IF_ERROR(RemoveOrphanBackends(report));
  if (had_intent || vm_.hotplug.next_index != next_before ||
      vm_.hotplug.devices.size() != devices_before) {
    RETURN_IF_ERROR(Checkpoint());
  }
  return report;
}

absl::Status Hotplug::RollIntent(const HotplugIntent& intent, const std::set<std::string>& present,
                                 ReconcileReport& report) {
  const PluggedDevice& d = intent.device;
  const bool in_qemu = present.count(d.id) != 0;
  const std::string interrupted =
      absl::StrCat(d.id, ": the interrupted ", intent.op, " (at ", intent.step, ")");
  if (intent.op == kIntentPlug) {
    if (in_qemu) {
      PluggedDevice plugged = d;
      plugged.fd_names.clear();
      if (vm_.hotplug.Find(d.id) == nullptr) vm_.hotplug.devices.push_back(std::move(plugged));
      report.actions.push_back(interrupted + " rolled forward: QEMU has the device");
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(Teardown(d));
    report.actions.push_back(interrupted + " rolled back: its backends and fds removed");
    return absl::OkStatus();
  }
  if (intent.op == kIntentUnplug) {
    if (!in_qemu) {
      // Release forgot the device before tearing down; a crash after that left only the intent.
      RETURN_IF_ERROR(vm_.hotplug.Find(d.id) != nullptr ? Release(d.id) : Teardown(d));
      report.actions.push_back(interrupted + " finished: QEMU no longer has the device");
      return absl::OkStatus();
    }
    if (vm_.hotplug.Find(d.id) == nullptr) vm_.hotplug.devices.push_back(d);
    absl::Status st = DeleteDevice(*vm_.hotplug.Find(d.id));
    if (st.ok()) {
      RETURN_IF_ERROR(Release(d.id));
      report.actions.push_back(interrupted + " carried through");
      return absl::OkStatus();
    }
    if (absl::IsDeadlineExceeded(st) || absl::IsFailedPrecondition(st)) {
      // Pending (recorded so) or refused by the guest (the device stays): both are recorded.
      report.actions.push_back(absl::StrCat(interrupted, " continued: ", st.message()));
      return absl::OkStatus();
    }
    return st;
  }
  // resize: the requested size is set again (the same value twice is harmless).
  PluggedDevice* recorded = vm_.hotplug.Find(d.id);
  if (recorded == nullptr || !in_qemu) {
    return absl::FailedPreconditionError(
        absl::StrCat(interrupted, ": the virtio-mem device is not in QEMU or in the record"));
  }
  RETURN_IF_ERROR(Command(d.id, "qom-set",
                          {{"path", "/machine/peripheral/" + d.id},
                           {"property", "requested-size"},
                           {"value", d.size_bytes}})
                      .status());
  recorded->size_bytes = d.size_bytes;
  report.actions.push_back(
      absl::StrCat(interrupted, " rolled forward to ", d.size_bytes / kMiB, " MiB"));
  return absl::OkStatus();
}

absl::Status Hotplug::RemoveOrphanBackends(ReconcileReport& report) {
  std::set<std::string> owned;
  for (const PluggedDevice& d : vm_.hotplug.devices) {
    for (const std::string* name : {&d.node_name, &d.object, &d.chardev}) {
      if (!name->empty()) owned.insert(*name);
    }
  }
  const std::string what = "sandbox " + vm_.sandbox_id;
  ASSIGN_OR_RETURN(Json nodes, Command(what, "query-named-block-nodes", {{"flat", true}}));
  ASSIGN_OR_RETURN(Json objects, Command(what, "qom-list", {{"path", "/objects"}}));
  ASSIGN_OR_RETURN(Json chardevs, Command(what, "query-chardev", nullptr));
  auto remove = [&](const std::string& name, absl::string_view command, const Json& args) {
    if (!IsHotplugBackend(name) || owned.count(name) != 0) return;
    owned.insert(name);  // a node can be listed more than once
    absl::Status st = RunOnceReleased(name, command, args);
    if (st.ok() || AlreadyGone(st)) {
      report.actions.push_back(absl::StrCat(name, ": orphan removed (", command, ")"));
    } else {
      // Not worth failing the caller's operation for: the next reconciliation tries again.
      report.actions.push_back(absl::StrCat(name, ": orphan not removed yet (", st.message(), ")"));
    }
  };
  for (const Json& n : nodes) {
    const std::string name = n.value("node-name", "");
    remove(name, "blockdev-del", {{"node-name", name}});
  }
  for (const Json& o : objects) {
    const std::string name = o.value("name", "");
    remove(name, "object-del", {{"id", name}});
  }
  for (const Json& c : chardevs) {
    const std::string name = c.value("label", "");
    remove(name, "chardev-remove", {{"id", name}});
  }
  return absl::OkStatus();
}

}  // namespace runvm::qemu
