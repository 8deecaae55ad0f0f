// Hotplug: virtio-serial ports (a container process's stdio).
#include <sys/stat.h>

#include <set>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "base/failpoint.h"
#include "base/status.h"
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
  Json backend = {{"type", "socket"},
                  {"data",
                   {{"addr", {{"type", "unix"}, {"data", {{"path", d.source}}}}},
                    {"server", true},
                    {"wait", false}}}};
  RETURN_IF_ERROR(AddBackend(undo, d, "chardev-add", {{"id", d.chardev}, {"backend", backend}},
                             "chardev " + d.chardev, "chardev-remove", {{"id", d.chardev}}));
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
