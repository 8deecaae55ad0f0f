#include "proto/config.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace runvm::config {
namespace {

constexpr char kQemu[] = "hypervisor.qemu.";

std::string QemuKey(absl::string_view name) { return absl::StrCat(kQemu, name); }

}  // namespace

std::vector<Issue> Config::Validate() const {
  std::vector<Issue> issues;
  const QemuConfig& q = hypervisor;
  auto add = [&](absl::string_view key, std::string message) {
    issues.push_back({QemuKey(key), std::move(message)});
  };

  if (q.path.empty()) add("path", "must name the QEMU binary");
  if (q.kernel.empty()) add("kernel", "must name the guest kernel");
  if (!q.initrd.empty() && !q.image.empty()) {
    add("image", "initrd and image are both set; set only one");
  } else if (q.initrd.empty() && q.image.empty()) {
    add("initrd", "one of initrd or image must be set");
  }
  for (auto [name, value] : {std::pair<absl::string_view, const std::string*>{"path", &q.path},
                             {"kernel", &q.kernel},
                             {"initrd", &q.initrd},
                             {"image", &q.image},
                             {"image_loader", &q.image_loader},
                             {"firmware", &q.firmware},
                             {"virtio_fs_daemon", &q.virtio_fs_daemon},
                             {"vhost_user_store_path", &q.vhost_user_store_path},
                             {"file_mem_backend", &q.file_mem_backend},
                             {"entropy_source", &q.entropy_source}}) {
    if (!value->empty() && value->front() != '/') {
      add(name, absl::StrCat("\"", *value, "\" is not an absolute path"));
    }
  }
  if (q.kernel_params.find_first_of(std::string("\n\0", 2)) != std::string::npos) {
    add("kernel_params", "must not contain a newline or NUL byte");
  }
  if (q.shared_fs == "virtio-fs" && q.virtio_fs_daemon.empty()) {
    add("virtio_fs_daemon", "shared_fs = \"virtio-fs\" needs virtio_fs_daemon");
  }
  if (!q.hypervisor_user.empty()) {
    // What QEMU opens after it has dropped to the user must be the user's to open: runvm passes
    // fds for taps, disks and stdio ports; these it cannot.
    auto confined = [&](absl::string_view key, absl::string_view why) {
      add(key, absl::StrCat(why, ", which QEMU cannot once it runs as hypervisor_user \"",
                            q.hypervisor_user, "\"; set hypervisor_user = \"\" to keep QEMU root"));
    };
    if (q.hypervisor_user.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") !=
            std::string::npos ||
        q.hypervisor_user.front() == '-') {
      add("hypervisor_user", absl::StrCat("\"", q.hypervisor_user, "\" is not a user name"));
    } else if (q.shared_fs == "virtio-9p") {
      confined("shared_fs", "virtio-9p has QEMU open the shared files");
    } else if (q.enable_hugepages) {
      confined("enable_hugepages", "memory hotplug makes files in /dev/hugepages");
    } else if (!q.file_mem_backend.empty()) {
      confined("file_mem_backend", "memory hotplug makes files there");
    } else if (absl::StrContains(q.seccompsandbox, "elevateprivileges=deny")) {
      add("seccompsandbox",
          "elevateprivileges=deny stops QEMU from changing to hypervisor_user (its filter is in "
          "place before it does); an unprivileged QEMU needs no such rule");
    }
  }
  if (q.enable_vhost_user_store && !q.enable_hugepages) {
    add("enable_vhost_user_store",
        "needs enable_hugepages = true (vhost-user shares guest memory)");
  }
  if (q.pcie_root_port > 0 && q.machine_type != "q35") {
    add("pcie_root_port",
        absl::StrCat("needs machine_type = \"q35\" (machine_type is \"", q.machine_type, "\")"));
  }
  // As in Kata: without a namespace of its own the hypervisor's taps cannot sit in the pod's
  // namespace, so only "none" goes with it. (runvm keeps QEMU in its own namespace either way;
  // only the tap fds cross, docs/network.md.)
  if (runtime.disable_new_netns && runtime.internetworking_model != "none") {
    issues.push_back({"runtime.disable_new_netns",
                      absl::StrCat("works only with internetworking_model = \"none\" (it is \"",
                                   runtime.internetworking_model, "\")")});
  }
  return issues;
}

std::vector<Issue> Config::ApplyClamps(const HostFacts& host) {
  std::vector<Issue> notices;
  QemuConfig& q = hypervisor;
  const int64_t cpus = std::max<int64_t>(host.cpus, 1);
  // A documented meaning (0 or a negative value) is applied silently; a value that had to be
  // cut down is reported.
  auto set = [&](absl::string_view key, int64_t& field, int64_t to, absl::string_view why) {
    if (field > 0) {
      notices.push_back({QemuKey(key), absl::StrCat(field, " changed to ", to, " (", why, ")")});
    }
    field = to;
  };

  if (q.default_vcpus < 0) {
    set("default_vcpus", q.default_vcpus, cpus, "negative means all host CPUs");
  } else if (q.default_vcpus == 0) {
    set("default_vcpus", q.default_vcpus, 1, "0 means 1");
  } else if (q.default_vcpus > cpus) {
    set("default_vcpus", q.default_vcpus, cpus, "the host has fewer CPUs");
  }
  if (q.default_vcpus > kMaxVcpus) {
    set("default_vcpus", q.default_vcpus, kMaxVcpus, "QEMU's limit");
  }
  if (q.default_maxvcpus == 0) {
    set("default_maxvcpus", q.default_maxvcpus, std::min(cpus, kMaxVcpus), "0 means all host CPUs");
  } else if (q.default_maxvcpus > cpus) {
    set("default_maxvcpus", q.default_maxvcpus, std::min(cpus, kMaxVcpus),
        "the host has fewer CPUs");
  }
  if (q.default_maxvcpus > kMaxVcpus) {
    set("default_maxvcpus", q.default_maxvcpus, kMaxVcpus, "QEMU's limit");
  }
  if (q.default_maxvcpus < q.default_vcpus) {
    set("default_maxvcpus", q.default_maxvcpus, q.default_vcpus, "below default_vcpus");
  }
  if (q.default_bridges == 0) {
    set("default_bridges", q.default_bridges, 1, "0 means 1");
  } else if (q.default_bridges > kMaxBridges) {
    set("default_bridges", q.default_bridges, kMaxBridges, "at most 5 bridges");
  }
  if (q.memory_slots == 0) {
    set("memory_slots", q.memory_slots, kDefaultMemorySlots, "0 means the default");
  }
  return notices;
}

}  // namespace runvm::config
