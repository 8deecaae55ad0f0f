#include "base/failpoint.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>

namespace runvm {
namespace {

constexpr const char* kFailpoints[] = {
    "vm.start.after-run-dir",
    "vm.start.after-virtiofsd-spawn",
    "vm.start.after-qemu-spawn",
    "vm.start.after-qmp-ready",
    "vm.start.after-cont",
    "vm.stop.after-quit",
    "vm.stop.before-remove",
    "hotplug.plug.after-intent",
    "hotplug.plug.after-getfd",
    "hotplug.plug.after-backend",
    "hotplug.plug.after-device-add",
    "hotplug.unplug.after-intent",
    "hotplug.unplug.after-device-del",
    "hotplug.unplug.after-device-gone",
    "hotplug.unplug.after-backend-del",
    "hotplug.resize.after-intent",
    "hotplug.resize.after-qom-set",
    "sandbox.create.after-intent",
    "sandbox.create.after-boot",
    "sandbox.stop.after-intent",
    "sandbox.delete.after-intent",
    "sandbox.delete.after-stop",
    "container.create.after-record",
    "container.create.after-boot",
    "container.create.before-shim",
    "network.connect.before-nic",
    "network.connect.before-filter",
    "network.connect.before-guest",
};

}  // namespace

void Failpoint(absl::string_view name) {
  // Read each time (a handful of calls per invocation), so a test can arm it in a child.
  const char* armed = std::getenv("RUNVM_FAILPOINT");
  if (armed != nullptr && name == armed) ::kill(::getpid(), SIGKILL);
}

std::span<const char* const> AllFailpoints() { return kFailpoints; }

}  // namespace runvm
