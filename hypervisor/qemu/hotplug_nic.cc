// Hotplug: virtio-net NICs on multi-queue taps, their fds passed by getfd.
#include <sys/stat.h>

#include <set>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "base/failpoint.h"
#include "base/status.h"
#include "devices/tap.h"
#include "hypervisor/qemu/hotplug_internal.h"

namespace runvm::qemu {

using Json = nlohmann::json;
using namespace hotplug_internal;  // NOLINT: the files of one class

absl::StatusOr<PluggedDevice> Hotplug::AddNic(const NicRequest& request) {
  const std::string what = absl::StrCat("NIC ", request.tap_name);
  RETURN_IF_ERROR(Annotate(devices::ParseMac(request.mac).status(), what));
  const int queues =
      request.queues > 0 ? request.queues : static_cast<int>(vm_.config.default_vcpus);
  RETURN_IF_ERROR(FinishPendingUnplugs());
  ASSIGN_OR_RETURN(PciPlace place, FreeBridgeSlot(vm_.config, vm_.hotplug, what));
  PluggedDevice d{.id = NextId("net"),
                  .kind = kKindNet,
                  .bus = place.bus,
                  .slot = place.slot,
                  .guest_address = place.guest_address,
                  .source = request.tap_name};
  d.netdev = "netdev-" + d.id;
  // Host side first: the tap vanishes with its last fd, so a failure below needs no cleanup
  // beyond the named fds QEMU holds until netdev_add takes them.
  ASSIGN_OR_RETURN(devices::Tap tap, devices::CreateTap(request.netns, request.tap_name, queues));
  UndoLog undo(*this);
  auto netdev_took_fds = std::make_shared<bool>(false);
  std::vector<std::string> fds, vhostfds;
  for (size_t q = 0; q < tap.queues.size(); ++q) fds.push_back(absl::StrCat("fd-", d.id, "-", q));
  for (size_t q = 0; q < tap.vhost.size(); ++q) {
    vhostfds.push_back(absl::StrCat("vhostfd-", d.id, "-", q));
  }
  // The intent names every fd before the first is handed over, so a crash leaks none.
  d.fd_names = fds;
  d.fd_names.insert(d.fd_names.end(), vhostfds.begin(), vhostfds.end());
  absl::Status intended = Intend(kIntentPlug, "getfd", d);
  if (!intended.ok()) return undo.Undo(intended);
  auto hand_over = [&](std::vector<Fd>& from, const std::vector<std::string>& names) {
    for (size_t q = 0; q < from.size(); ++q) {
      const std::string& name = names[q];
      absl::Status st = qmp_.GetFd(name, std::move(from[q]), Deadline());
      if (!st.ok()) return undo.Undo(Annotate(st, absl::StrCat(d.id, ": getfd ", name)));
      undo.Add("monitor fd " + name, [this, name, id = d.id, netdev_took_fds] {
        if (*netdev_took_fds) return absl::OkStatus();
        return Annotate(qmp_.CloseFd(name, Deadline()), id + ": closefd");
      });
      RUNVM_FAILPOINT("hotplug.plug.after-getfd");
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(hand_over(tap.queues, fds));
  RETURN_IF_ERROR(hand_over(tap.vhost, vhostfds));
  Json netdev = {{"type", "tap"}, {"id", d.netdev}, {"fds", absl::StrJoin(fds, ":")}};
  if (!vhostfds.empty()) {
    netdev["vhost"] = true;
    netdev["vhostfds"] = absl::StrJoin(vhostfds, ":");
  }
  absl::Status added = AddBackend(undo, d, "netdev_add", netdev, "netdev " + d.netdev, "netdev_del",
                                  {{"id", d.netdev}});
  if (!added.ok()) return added;
  *netdev_took_fds = true;
  return Commit(d,
                {{"driver", "virtio-net-pci"},
                 {"id", d.id},
                 {"netdev", d.netdev},
                 {"mac", request.mac},
                 {"bus", d.bus},
                 {"addr", Hex2(d.slot)},
                 {"mq", true},
                 {"vectors", 2 * queues + 2}},
                undo);
}

}  // namespace runvm::qemu
