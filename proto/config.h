// The configuration model: what configuration.toml says, as plain values.
//
// Key names, types and defaults follow Kata Containers' configuration-qemu.toml, so an existing
// Kata file loads unchanged. Every struct is a value type (defaults, operator==) and the whole
// configuration is checked in one place, Validate(). Reading TOML lives in runtime/ (it does
// I/O); this header has no I/O and no parser.
//
//   Config c;                                  // every default
//   c.hypervisor.default_memory = 4096;
//   if (auto issues = c.Validate(); !issues.empty()) ...
//
// Integer keys are held as int64_t and range-checked by the key table (config_keys.h), so that a
// negative or oversized value is reported with the key's name instead of wrapping.
#ifndef RUNVM_PROTO_CONFIG_H_
#define RUNVM_PROTO_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

namespace runvm::config {

// Allowed values of the string-enum keys.
inline constexpr const char* kSharedFsValues[] = {"virtio-fs", "virtio-9p", "none"};
inline constexpr const char* kVirtioFsCacheValues[] = {"never", "auto", "always"};
inline constexpr const char* kBlockDriverValues[] = {"virtio-scsi", "virtio-blk", "nvdimm"};
inline constexpr const char* kMachineTypeValues[] = {"q35", "pc"};
inline constexpr const char* kAcceleratorValues[] = {"auto", "kvm", "tcg"};
inline constexpr const char* kInternetworkingValues[] = {"tcfilter", "macvtap", "none"};

// [hypervisor.qemu]
struct QemuConfig {
  std::string path = "/usr/bin/qemu-system-x86_64";
  std::string kernel = "/usr/local/share/runvm/vmlinuz";
  std::string initrd = "/usr/local/share/runvm/initrd.img";
  std::string image;
  // runvm: an initrd that only loads the drivers `image` needs (NVDIMM, virtio-blk) and switches
  // to it; Debian's kernel has them as modules. Empty: boot `image` directly.
  std::string image_loader = "/usr/local/share/runvm/image-loader.img";
  std::string machine_type = "q35";
  std::vector<std::string> enable_annotations;
  std::vector<std::string> valid_hypervisor_paths = {"/usr/bin/qemu-system-x86_64"};
  std::string kernel_params;
  std::string firmware;
  std::string machine_accelerators;
  std::string cpu_features = "pmu=off";
  int64_t default_vcpus = 1;
  int64_t default_maxvcpus = 0;
  int64_t default_bridges = 1;
  int64_t default_memory = 2048;  // MiB
  int64_t memory_slots = 10;
  int64_t memory_offset = 0;  // MiB
  bool enable_virtio_mem = false;
  bool disable_block_device_use = false;
  std::string shared_fs = "virtio-fs";
  std::string virtio_fs_daemon = "/usr/lib/qemu/virtiofsd";
  std::vector<std::string> valid_virtio_fs_daemon_paths = {"/usr/lib/qemu/virtiofsd"};
  int64_t virtio_fs_cache_size = 0;  // MiB of DAX window; 0: no DAX
  std::vector<std::string> virtio_fs_extra_args = {"--thread-pool-size=1"};
  std::string virtio_fs_cache = "auto";
  std::string block_device_driver = "virtio-scsi";
  bool block_device_cache_set = false;
  bool block_device_cache_direct = false;
  bool block_device_cache_noflush = false;
  bool enable_iothreads = false;
  bool enable_mem_prealloc = false;
  bool enable_hugepages = false;
  bool enable_vhost_user_store = false;
  std::string vhost_user_store_path = "/var/run/kata-containers/vhost-user";
  std::vector<std::string> valid_vhost_user_store_paths = {"/var/run/kata-containers/vhost-user"};
  bool enable_iommu = false;
  bool enable_iommu_platform = false;
  std::string file_mem_backend;
  std::vector<std::string> valid_file_mem_backends;
  std::vector<std::string> pflashes;
  bool enable_swap = false;
  bool enable_debug = false;
  bool disable_nesting_checks = false;
  int64_t msize_9p = 8192;
  bool use_vsock = false;
  bool disable_image_nvdimm = false;
  bool hotplug_vfio_on_root_bus = false;
  int64_t pcie_root_port = 0;
  bool disable_vhost_net = false;
  std::string entropy_source = "/dev/urandom";
  std::string guest_hook_path;
  // runvm: "auto" uses KVM when it can actually run a guest, TCG otherwise.
  std::string accelerator = "auto";
  // QEMU's -sandbox (seccomp) options, as Kata's key; empty: no -sandbox (for debugging).
  std::string seccompsandbox = "on,obsolete=deny,spawn=deny,resourcecontrol=deny";
  // runvm (in the spirit of Kata's `rootless`): the user QEMU runs as once it has started
  // (QEMU's -runas: it opens what it needs at start, then drops to this user and every
  // capability). Made by scripts/setup.sh. Empty: QEMU stays root (docs/security.md).
  std::string hypervisor_user = "runvm-qemu";

  bool operator==(const QemuConfig&) const = default;
};

// [agent.kata]
struct AgentConfig {
  bool enable_debug = false;
  std::vector<std::string> kernel_modules;
  int64_t dial_timeout = 45;  // seconds

  bool operator==(const AgentConfig&) const = default;
};

// [runtime]
struct RuntimeConfig {
  bool enable_debug = false;
  std::string internetworking_model = "tcfilter";
  bool disable_guest_seccomp = true;
  bool disable_new_netns = false;
  bool sandbox_cgroup_only = false;
  std::vector<std::string> experimental;

  bool operator==(const RuntimeConfig&) const = default;
};

// One problem found by Validate() or a clamp: the dotted key it concerns and a sentence.
struct Issue {
  std::string key;  // e.g. "hypervisor.qemu.initrd"
  std::string message;
  bool operator==(const Issue&) const = default;
};

// Facts about the host that Kata's clamps depend on.
struct HostFacts {
  int64_t cpus = 1;
};

struct Config {
  QemuConfig hypervisor;
  AgentConfig agent;
  RuntimeConfig runtime;

  bool operator==(const Config&) const = default;

  // Cross-field rules that the key table cannot express. Empty when valid.
  std::vector<Issue> Validate() const;

  // Kata's clamps (default_vcpus, default_maxvcpus, default_bridges, memory_slots). Returns one
  // notice per positive value that had to be cut or raised, for the log (0 and negative values
  // have documented meanings and are applied silently).
  std::vector<Issue> ApplyClamps(const HostFacts& host);
};

// Kata's QEMU limit on vCPUs.
inline constexpr int64_t kMaxVcpus = 240;
// Kata's limit on PCI bridges.
inline constexpr int64_t kMaxBridges = 5;
// Kata's default when memory_slots is 0.
inline constexpr int64_t kDefaultMemorySlots = 10;

}  // namespace runvm::config

#endif  // RUNVM_PROTO_CONFIG_H_
