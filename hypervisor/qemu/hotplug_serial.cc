// Hotplug: virtio-serial ports (a container process's stdio).
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include <set>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "base/failpoint.h"
#include "base/status.h"
#include "base/unix_socket.h"
#include "hypervisor/qemu/hotplug_internal.h"

namespace runvm::qemu {

using Json = nlohmann::json;
using namespace hotplug_internal;  // NOLINT: the files of one class

absl::StatusOr<PluggedDevice> Hotplug::AddSerialPort(const std::string& name) {
  const std::string what = absl::StrCat("serial port ", name);
  if (name.empty() || name.size() > 64 || name == kAgentPortName) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a usable port name"));
  }
  RETURN_IF_ERROR(FinishPendingUnplugs());
  std::set<int> used;
  for (const PluggedDevice& d : vm_.hotplug.devices) {
    if (d.kind != kKindSerialPort) continue;
    if (d.guest_address == name) {
      return absl::AlreadyExistsError(absl::StrCat(what, ": already plugged as ", d.id));
    }
    used.insert(d.slot);
  }
  // Port 0 is the console's, 1 the agent's.
  int nr = 2;
  while (used.count(nr) != 0) ++nr;
  if (nr >= kSerialMaxPorts) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": all ", kSerialMaxPorts - 2, " serial ports are in use"));
  }
  PluggedDevice d{.id = NextId("port"),
                  .kind = kKindSerialPort,
                  .bus = "serial0.0",
                  .slot = nr,
                  .guest_address = name};
  d.source = absl::StrCat(vm_.run_dir, "/", d.id, ".sock");
  d.chardev = "char-" + d.id;
  UndoLog undo(*this);
  Json addr = {{"type", "unix"}, {"data", {{"path", d.source}}}};
  auto chardev_took_fd = std::make_shared<bool>(false);
  if (Confined()) {
    // QEMU, no longer root, cannot make a socket in the run directory: runvm makes it and hands
    // the listening fd over by name, which chardev-add takes.
    const std::string fdname = "fd-" + d.id;
    ASSIGN_OR_RETURN(Fd listener, ListenUnix(d.source));
    undo.Add("socket " + d.source, [path = d.source] {
      (void)::unlink(path.c_str());
      return absl::OkStatus();
    });
    d.fd_names = {fdname};
    absl::Status intended = Intend(kIntentPlug, "getfd", d);
    if (intended.ok()) intended = qmp_.GetFd(fdname, std::move(listener), Deadline());
    if (!intended.ok()) return undo.Undo(Annotate(intended, absl::StrCat(d.id, ": getfd")));
    undo.Add("monitor fd " + fdname, [this, fdname, id = d.id, chardev_took_fd] {
      if (*chardev_took_fd) return absl::OkStatus();
      return Annotate(qmp_.CloseFd(fdname, Deadline()), id + ": closefd");
    });
    addr = {{"type", "fd"}, {"data", {{"str", fdname}}}};
  }
  Json backend = {{"type", "socket"},
                  {"data", {{"addr", addr}, {"server", true}, {"wait", false}}}};
  RETURN_IF_ERROR(AddBackend(undo, d, "chardev-add", {{"id", d.chardev}, {"backend", backend}},
                             "chardev " + d.chardev, "chardev-remove", {{"id", d.chardev}}));
  *chardev_took_fd = true;
  return Commit(d,
                {{"driver", "virtserialport"},
                 {"id", d.id},
                 {"bus", d.bus},
                 {"nr", nr},
                 {"chardev", d.chardev},
                 {"name", name}},
                undo);
}

}  // namespace runvm::qemu
