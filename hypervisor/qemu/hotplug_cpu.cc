// Hotplug: vCPUs, plugged and unplugged.
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

absl::StatusOr<VcpuResult> Hotplug::AddVcpus(int count) {
  if (count <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("vCPUs: cannot add ", count));
  }
  RETURN_IF_ERROR(FinishPendingUnplugs());
  ASSIGN_OR_RETURN(Json slots, Command("vCPUs", "query-hotpluggable-cpus", nullptr));
  std::vector<Json> free;
  int online = 0;
  for (const Json& s : slots) {
    if (s.contains("qom-path")) {
      online += static_cast<int>(JsonInt(s, "vcpus-count", 1));
    } else {
      free.push_back(s);
    }
  }
  // QEMU lists the highest ids first; the guest onlines the lowest free ids far faster.
  auto key = [](const Json& s) {
    const Json& p = s.value("props", Json::object());
    return std::make_tuple(JsonInt(p, "node-id"), JsonInt(p, "socket-id"), JsonInt(p, "die-id"),
                           JsonInt(p, "core-id"), JsonInt(p, "thread-id"));
  };
  std::sort(free.begin(), free.end(),
            [&](const Json& a, const Json& b) { return key(a) < key(b); });
  VcpuResult result;
  const int max = static_cast<int>(vm_.config.default_maxvcpus);
  int allowed = std::min<int>({count, static_cast<int>(free.size()), std::max(0, max - online)});
  if (allowed < count) {
    result.warning = absl::StrCat("vCPUs: asked for ", count, " more, adding ", allowed, ": ",
                                  online, " of at most ", max, " (default_maxvcpus) are online");
  }
  for (int i = 0; i < allowed; ++i) {
    const Json& s = free[i];
    const Json& props = s.value("props", Json::object());
    PluggedDevice d{.id = NextId("cpu"), .kind = kKindCpu};
    d.slot = static_cast<int>(JsonInt(props, "socket-id"));
    d.guest_address =
        absl::StrCat("socket ", JsonInt(props, "socket-id", 0), " core ",
                     JsonInt(props, "core-id", 0), " thread ", JsonInt(props, "thread-id", 0));
    Json args = props;
    args["driver"] = s.value("type", "");
    args["id"] = d.id;
    UndoLog none(*this);
    absl::StatusOr<PluggedDevice> r = Commit(d, args, none);
    if (!r.ok()) {
      return absl::Status(
          r.status().code(),
          absl::StrCat("vCPUs: plugged ", result.ids.size(), " of ", allowed,
                       result.ids.empty() ? "" : " (" + absl::StrJoin(result.ids, ", ") + ")",
                       "; then ", r.status().message()));
    }
    result.ids.push_back(d.id);
  }
  result.online = online + static_cast<int>(result.ids.size());
  return result;
}

absl::Status Hotplug::VcpuUnplugAllowed() const {
  if (vm_.accelerator != "tcg") return absl::OkStatus();
  // Measured: QEMU 7.2 under TCG unplugs a vCPU, but segfaults when one is plugged again.
  return absl::FailedPreconditionError(
      "vCPUs: not removed: under TCG, QEMU 7.2 crashes when a vCPU is plugged again after an "
      "unplug; lower the guest's CPU quota instead");
}

absl::StatusOr<VcpuResult> Hotplug::RemoveVcpus(int count) {
  if (count <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("vCPUs: cannot remove ", count));
  }
  RETURN_IF_ERROR(VcpuUnplugAllowed());
  RETURN_IF_ERROR(FinishPendingUnplugs());
  std::vector<std::string> plugged;
  for (const PluggedDevice& d : vm_.hotplug.devices) {
    if (d.kind == kKindCpu && !d.unplug_pending) plugged.push_back(d.id);
  }
  VcpuResult result;
  int n = std::min<int>(count, static_cast<int>(plugged.size()));
  if (n < count) {
    result.warning = absl::StrCat("vCPUs: asked to remove ", count, ", removing ", n,
                                  ": boot vCPUs are never removed");
  }
  for (int i = 0; i < n; ++i) {
    const std::string id = plugged[plugged.size() - 1 - i];
    absl::Status st = Unplug(id);
    if (!st.ok()) {
      return absl::Status(
          st.code(),
          absl::StrCat("vCPUs: removed ", result.ids.size(), " of ", n,
                       result.ids.empty() ? "" : " (" + absl::StrJoin(result.ids, ", ") + ")",
                       "; then ", st.message()));
    }
    result.ids.push_back(id);
  }
  ASSIGN_OR_RETURN(Json slots, Command("vCPUs", "query-hotpluggable-cpus", nullptr));
  for (const Json& s : slots) {
    if (s.contains("qom-path")) result.online += static_cast<int>(JsonInt(s, "vcpus-count", 1));
  }
  return result;
}

}  // namespace runvm::qemu
