#include "proto/config_keys.h"

#include <limits>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace runvm::config {
namespace {

template <typename T>
constexpr ValueKind KindOf() {
  if constexpr (std::is_same_v<T, bool>) return ValueKind::kBool;
  if constexpr (std::is_same_v<T, int64_t>) return ValueKind::kInt;
  if constexpr (std::is_same_v<T, std::string>) return ValueKind::kString;
  if constexpr (std::is_same_v<T, std::vector<std::string>>) return ValueKind::kStringList;
}

template <auto Section, auto Member>
ConfigValue Get(const Config& c) {
  return ConfigValue((c.*Section).*Member);
}

template <auto Section, auto Member>
void Set(Config& c, const ConfigValue& v) {
  using T = std::remove_cvref_t<decltype((c.*Section).*Member)>;
  (c.*Section).*Member = std::get<T>(v);
}

struct Opts {
  int64_t min = 0;
  int64_t max = 0;
  std::span<const char* const> allowed = {};
  absl::string_view path_globs_key = {};
  bool annotatable = true;
};

template <auto Section, auto Member>
KeyInfo Make(absl::string_view table, absl::string_view name, Opts o = {}) {
  using T = std::remove_cvref_t<decltype(std::declval<Config&>().*Section.*Member)>;
  return KeyInfo{table,
                 name,
                 KindOf<T>(),
                 o.min,
                 o.max,
                 o.allowed,
                 o.path_globs_key,
                 o.annotatable,
                 &Get<Section, Member>,
                 &Set<Section, Member>};
}

constexpr int64_t kI32Min = std::numeric_limits<int32_t>::min();
constexpr int64_t kI32Max = std::numeric_limits<int32_t>::max();
constexpr int64_t kU32Max = std::numeric_limits<uint32_t>::max();
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();

#define Q(name, ...) \
  Make<&Config::hypervisor, &QemuConfig::name>("hypervisor.qemu", #name __VA_OPT__(, ) __VA_ARGS__)
#define A(name, ...) \
  Make<&Config::agent, &AgentConfig::name>("agent.kata", #name __VA_OPT__(, ) __VA_ARGS__)
#define R(name, ...) \
  Make<&Config::runtime, &RuntimeConfig::name>("runtime", #name __VA_OPT__(, ) __VA_ARGS__)

const std::vector<KeyInfo>& Table() {
  static const std::vector<KeyInfo> keys = {
      Q(path, {.path_globs_key = "valid_hypervisor_paths"}),
      Q(kernel, {.path_globs_key = "valid_hypervisor_paths"}),
      Q(initrd, {.path_globs_key = "valid_hypervisor_paths"}),
      Q(image, {.path_globs_key = "valid_hypervisor_paths"}),
      Q(image_loader, {.path_globs_key = "valid_hypervisor_paths"}),
      Q(machine_type, {.allowed = kMachineTypeValues}),
      Q(accelerator, {.allowed = kAcceleratorValues}),
      Q(seccompsandbox, {.annotatable = false}),
      Q(hypervisor_user, {.annotatable = false}),
      Q(enable_annotations, {.annotatable = false}),
      Q(valid_hypervisor_paths, {.annotatable = false}),
      Q(kernel_params),
      Q(firmware, {.path_globs_key = "valid_hypervisor_paths"}),
      Q(machine_accelerators),
      Q(cpu_features),
      Q(default_vcpus, {.min = kI32Min, .max = kI32Max}),
      Q(default_maxvcpus, {.min = 0, .max = kU32Max}),
      Q(default_bridges, {.min = 0, .max = kU32Max}),
      Q(default_memory, {.min = 1, .max = kU32Max}),
      Q(memory_slots, {.min = 0, .max = 256}),
      Q(memory_offset, {.min = 0, .max = kI64Max >> 20}),
      Q(enable_virtio_mem),
      Q(disable_block_device_use),
      Q(shared_fs, {.allowed = kSharedFsValues}),
      Q(virtio_fs_daemon, {.path_globs_key = "valid_virtio_fs_daemon_paths"}),
      Q(valid_virtio_fs_daemon_paths, {.annotatable = false}),
      Q(virtio_fs_cache_size, {.min = 0, .max = kU32Max}),
      Q(virtio_fs_extra_args),
      Q(virtio_fs_cache, {.allowed = kVirtioFsCacheValues}),
      Q(block_device_driver, {.allowed = kBlockDriverValues}),
      Q(block_device_cache_set),
      Q(block_device_cache_direct),
      Q(block_device_cache_noflush),
      Q(enable_iothreads),
      Q(enable_mem_prealloc),
      Q(enable_hugepages),
      Q(enable_vhost_user_store),
      Q(vhost_user_store_path, {.path_globs_key = "valid_vhost_user_store_paths"}),
      Q(valid_vhost_user_store_paths, {.annotatable = false}),
      Q(enable_iommu),
      Q(enable_iommu_platform),
      Q(file_mem_backend, {.path_globs_key = "valid_file_mem_backends"}),
      Q(valid_file_mem_backends, {.annotatable = false}),
      Q(pflashes, {.annotatable = false}),
      Q(enable_swap),
      Q(enable_debug),
      Q(disable_nesting_checks),
      Q(msize_9p, {.min = 4096, .max = 1048576}),
      Q(use_vsock),
      Q(disable_image_nvdimm),
      Q(hotplug_vfio_on_root_bus),
      Q(pcie_root_port, {.min = 0, .max = 32}),
      Q(disable_vhost_net),
      Q(entropy_source, {.annotatable = false}),
      Q(guest_hook_path, {.annotatable = false}),
      A(enable_debug),
      A(kernel_modules),
      A(dial_timeout, {.min = 1, .max = 3600}),
      R(enable_debug),
      R(internetworking_model, {.allowed = kInternetworkingValues}),
      R(disable_guest_seccomp),
      R(disable_new_netns),
      R(sandbox_cgroup_only),
      R(experimental),
  };
  return keys;
}

#undef Q
#undef A
#undef R

std::string Quote(absl::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          absl::StrAppend(&out, "\\u00", c < 0x10 ? "0" : "", absl::Hex(c));
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

}  // namespace

absl::string_view KindName(ValueKind kind) {
  switch (kind) {
    case ValueKind::kBool:
      return "a boolean";
    case ValueKind::kInt:
      return "an integer";
    case ValueKind::kString:
      return "a string";
    case ValueKind::kStringList:
      return "an array of strings";
  }
  return "a value";
}

std::span<const KeyInfo> AllKeys() { return Table(); }

const KeyInfo* FindKey(absl::string_view table, absl::string_view name) {
  for (const KeyInfo& k : Table()) {
    if (k.table == table && k.name == name) return &k;
  }
  return nullptr;
}

std::string KeyInfo::CheckValue(const ConfigValue& v) const {
  if (kind == ValueKind::kInt) {
    int64_t n = std::get<int64_t>(v);
    if (n < min || n > max) {
      return absl::StrCat(n, " is out of range; allowed: ", min, " to ", max);
    }
  }
  if (kind == ValueKind::kString && !allowed.empty()) {
    const std::string& s = std::get<std::string>(v);
    for (const char* a : allowed) {
      if (s == a) return "";
    }
    return absl::StrCat(Quote(s), " is not allowed; allowed: ", absl::StrJoin(allowed, ", "));
  }
  return "";
}

std::string RenderTomlValue(const ConfigValue& v) {
  struct Visitor {
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(int64_t n) const { return absl::StrCat(n); }
    std::string operator()(const std::string& s) const { return Quote(s); }
    std::string operator()(const std::vector<std::string>& list) const {
      std::string out = "[";
      for (size_t i = 0; i < list.size(); ++i) absl::StrAppend(&out, i ? ", " : "", Quote(list[i]));
      return out + "]";
    }
  };
  return std::visit(Visitor{}, v);
}

}  // namespace runvm::config
