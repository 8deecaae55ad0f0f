#include "runtime/config/loader.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <string_view>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/file.h"
#include "proto/config_keys.h"
#include "runtime/config/annotations.h"
#include "toml++/toml.h"

namespace runvm {
namespace {

using config::ConfigValue;
using config::KeyInfo;
using config::ValueKind;

// Keys Kata defines for [hypervisor.qemu], [agent.kata] and [runtime] that runvm does not
// implement: accepted, so a Kata file loads unchanged, and reported as ignored.
const std::set<std::string, std::less<>>& KataOnlyKeys() {
  static const std::set<std::string, std::less<>> keys = {
      // hypervisor.qemu
      "hypervisor.qemu.rootfs_type",
      "hypervisor.qemu.confidential_guest",
      "hypervisor.qemu.sev_snp_guest",
      "hypervisor.qemu.snp_id_block",
      "hypervisor.qemu.snp_id_auth",
      "hypervisor.qemu.snp_guest_policy",
      "hypervisor.qemu.snp_certs_path",
      "hypervisor.qemu.firmware_volume",
      "hypervisor.qemu.default_maxmemory",
      "hypervisor.qemu.virtio_fs_queue_size",
      "hypervisor.qemu.block_device_aio",
      "hypervisor.qemu.indep_iothreads",
      "hypervisor.qemu.reclaim_guest_freed_memory",
      "hypervisor.qemu.vhost_user_reconnect_timeout_sec",
      "hypervisor.qemu.valid_entropy_sources",
      "hypervisor.qemu.extra_monitor_socket",
      "hypervisor.qemu.hot_plug_vfio",
      "hypervisor.qemu.cold_plug_vfio",
      "hypervisor.qemu.pcie_switch_port",
      "hypervisor.qemu.rx_rate_limiter_max_rate",
      "hypervisor.qemu.tx_rate_limiter_max_rate",
      "hypervisor.qemu.guest_memory_dump_path",
      "hypervisor.qemu.guest_memory_dump_paging",
      "hypervisor.qemu.enable_guest_swap",
      "hypervisor.qemu.use_legacy_serial",
      "hypervisor.qemu.disable_selinux",
      "hypervisor.qemu.disable_guest_selinux",
      "hypervisor.qemu.kernel_verity_params",
      "hypervisor.qemu.valid_kernel_params",
      "hypervisor.qemu.enable_vcpus_pinning",
      "hypervisor.qemu.numa_mapping",
      "hypervisor.qemu.jailer_path",
      "hypervisor.qemu.valid_jailer_paths",
      // agent.kata
      "agent.kata.enable_tracing",
      "agent.kata.debug_console_enabled",
      "agent.kata.container_pipe_size",
      "agent.kata.cdh_api_timeout",
      "agent.kata.mem_agent",
      // runtime
      "runtime.enable_tracing",
      "runtime.jaeger_endpoint",
      "runtime.jaeger_user",
      "runtime.jaeger_password",
      "runtime.vfio_mode",
      "runtime.disable_guest_empty_dir",
      "runtime.enable_pprof",
      "runtime.static_sandbox_resource_mgmt",
      "runtime.sandbox_bind_mounts",
      "runtime.enable_vcpus_pinning",
      "runtime.dan_conf",
      "runtime.create_container_timeout",
      "runtime.guest_selinux_label",
      "runtime.enable_cpu_memory_hotplug",
      "runtime.pod_resource_api_sock",
      "runtime.enable_compat_oci_hooks",
      "runtime.use_sandbox_cgroup",
  };
  return keys;
}

// Kata tables for other hypervisors and components runvm does not have.
const std::set<std::string, std::less<>>& KataOnlyTables() {
  static const std::set<std::string, std::less<>> tables = {
      "hypervisor.firecracker",
      "hypervisor.clh",
      "hypervisor.dragonball",
      "hypervisor.acrn",
      "hypervisor.stratovirt",
      "hypervisor.remote",
      "factory",
      "image",
      "netmon",
      "proxy.kata",
      "shim.kata",
  };
  return tables;
}

absl::string_view TomlTypeName(toml::node_type t) {
  switch (t) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

SourcePos PosOf(const toml::source_region& r, const std::string& file) {
  return SourcePos{file, static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
}

std::string Excerpt(const toml::node& n) {
  std::string s;
  if (auto v = n.value<std::string>()) {
    s = config::RenderTomlValue(ConfigValue(*v));
  } else if (auto i = n.value_exact<int64_t>()) {
    s = absl::StrCat(*i);
  } else if (auto d = n.value_exact<double>()) {
    s = absl::StrCat(*d);
  } else if (auto b = n.value_exact<bool>()) {
    s = *b ? "true" : "false";
  }
  return s.empty() ? "" : absl::StrCat(" (", s, ")");
}

// Converts one TOML value to the key's kind, or says why not.
absl::StatusOr<ConfigValue> Convert(const KeyInfo& key, const toml::node& n) {
  auto mismatch = [&] {
    return absl::InvalidArgumentError(absl::StrCat("expected ", config::KindName(key.kind),
                                                   ", got ", TomlTypeName(n.type()), Excerpt(n)));
  };
  switch (key.kind) {
    case ValueKind::kBool:
      if (!n.is_boolean()) return mismatch();
      return ConfigValue(n.as_boolean()->get());
    case ValueKind::kInt:
      if (!n.is_integer()) return mismatch();
      return ConfigValue(n.as_integer()->get());
    case ValueKind::kString:
      if (!n.is_string()) return mismatch();
      return ConfigValue(n.as_string()->get());
    case ValueKind::kStringList: {
      const toml::array* a = n.as_array();
      if (a == nullptr) return mismatch();
      std::vector<std::string> list;
      for (size_t i = 0; i < a->size(); ++i) {
        const toml::node& e = *a->get(i);
        if (!e.is_string()) {
          return absl::InvalidArgumentError(absl::StrCat("expected an array of strings, got ",
                                                         TomlTypeName(e.type()), Excerpt(e),
                                                         " at index ", i));
        }
        list.push_back(e.as_string()->get());
      }
      return ConfigValue(std::move(list));
    }
  }
  return mismatch();
}

// A message and where it points, so that messages can be reported in file order (toml++ walks
// a table in key order).
struct Located {
  SourcePos pos;
  std::string text;
};

std::vector<std::string> InFileOrder(std::vector<Located> items) {
  std::stable_sort(items.begin(), items.end(), [](const Located& a, const Located& b) {
    return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
  });
  std::vector<std::string> out;
  for (Located& l : items) out.push_back(std::move(l.text));
  return out;
}

// Walks the parsed document, filling `out` and collecting errors and warnings.
class Parser {
 public:
  explicit Parser(LoadedConfig& out) : out_(out) {}

  std::vector<std::string> TakeErrors() { return InFileOrder(std::move(errors_)); }
  std::vector<std::string> TakeWarnings() { return InFileOrder(std::move(warnings_)); }

  void Table(const toml::table& t, const std::string& prefix) {
    for (auto&& [k, v] : t) {
      std::string name(k.str());
      std::string path = prefix.empty() ? name : absl::StrCat(prefix, ".", name);
      SourcePos pos = PosOf(k.source(), out_.file);
      if (IsContainer(path)) {
        if (!v.is_table()) {
          Error(pos, path, absl::StrCat("expected a table, got ", TomlTypeName(v.type())));
          continue;
        }
        Table(*v.as_table(), path);
        continue;
      }
      if (KataOnlyTables().count(path)) {
        warnings_.push_back({pos, absl::StrCat(pos.ToString(), ": [", path,
                                               "] is a Kata table for a component runvm does not "
                                               "have (runvm drives QEMU); ignored")});
        continue;
      }
      if (KataOnlyKeys().count(path)) {
        warnings_.push_back({pos, absl::StrCat(pos.ToString(), ": ", path,
                                               ": a Kata key runvm does not implement; ignored")});
        continue;
      }
      const KeyInfo* key = LookupLeaf(prefix, name);
      if (key == nullptr) {
        Error(pos, path, UnknownKeyMessage(prefix));
        continue;
      }
      SourcePos vpos = PosOf(v.source(), out_.file);
      absl::StatusOr<ConfigValue> value = Convert(*key, v);
      if (!value.ok()) {
        Error(vpos, path, value.status().message());
        continue;
      }
      if (std::string why = key->CheckValue(*value); !why.empty()) {
        Error(vpos, path, why);
        continue;
      }
      key->set(out_.config, *value);
      out_.positions[path] = vpos;
    }
  }

 private:
  static bool IsContainer(absl::string_view path) {
    return path == "hypervisor" || path == "agent" || path == "hypervisor.qemu" ||
           path == "agent.kata" || path == "runtime";
  }

  static const KeyInfo* LookupLeaf(absl::string_view prefix, absl::string_view name) {
    if (prefix != "hypervisor.qemu" && prefix != "agent.kata" && prefix != "runtime") {
      return nullptr;
    }
    return config::FindKey(prefix, name);
  }

  static std::string UnknownKeyMessage(absl::string_view prefix) {
    if (prefix.empty()) {
      return "unknown table or key; allowed at the top: [hypervisor.qemu], [agent.kata], "
             "[runtime]";
    }
    if (prefix == "hypervisor" || prefix == "agent") {
      return absl::StrCat("unknown table; allowed: [",
                          prefix == "hypervisor" ? "hypervisor.qemu" : "agent.kata", "]");
    }
    return absl::StrCat("unknown key in [", prefix, "] (neither a Kata nor a runvm key)");
  }

  void Error(const SourcePos& pos, const std::string& path, absl::string_view message) {
    errors_.push_back({pos, absl::StrCat(pos.ToString(), ": ", path, ": ", message)});
  }

  LoadedConfig& out_;
  std::vector<Located> errors_;
  std::vector<Located> warnings_;
};

absl::Status ErrorsToStatus(const std::vector<std::string>& errors) {
  return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
}

}  // namespace

std::string SourcePos::ToString() const {
  if (line <= 0) return file;
  return absl::StrCat(file, ":", line, ":", column);
}

std::string LoadedConfig::Describe(const std::string& key, absl::string_view message) const {
  auto it = positions.find(key);
  std::string where = it != positions.end() ? it->second.ToString() : file;
  return absl::StrCat(where, ": ", key, ": ", message);
}

absl::StatusOr<LoadedConfig> ParseConfig(absl::string_view text, const std::string& file,
                                         const config::HostFacts& host) {
  LoadedConfig out;
  out.file = file;
  toml::table root;
  try {
    root = toml::parse(std::string_view(text.data(), text.size()), file);
  } catch (const toml::parse_error& e) {
    SourcePos pos = PosOf(e.source(), file);
    return absl::InvalidArgumentError(
        absl::StrCat(pos.ToString(), ": invalid TOML: ", std::string(e.description())));
  }
  Parser parser(out);
  parser.Table(root, "");
  std::vector<std::string> errors = parser.TakeErrors();
  if (!errors.empty()) return ErrorsToStatus(errors);
  out.warnings = parser.TakeWarnings();

  for (const config::Issue& issue : out.config.Validate()) {
    errors.push_back(out.Describe(issue.key, issue.message));
  }
  if (absl::Status st = CheckAnnotationRules(out.config.hypervisor.enable_annotations); !st.ok()) {
    errors.push_back(out.Describe("hypervisor.qemu.enable_annotations", st.message()));
  }
  if (!errors.empty()) return ErrorsToStatus(errors);
  for (const config::Issue& notice : out.config.ApplyClamps(host)) {
    out.warnings.push_back(out.Describe(notice.key, notice.message));
  }
  return out;
}

absl::StatusOr<LoadedConfig> LoadConfigFile(const std::string& path,
                                            const config::HostFacts& host) {
  absl::StatusOr<std::string> text = ReadFile(path, 1 << 20);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat("configuration: ", text.status().message()));
  }
  return ParseConfig(*text, path, host);
}

absl::StatusOr<LoadedConfig> LoadEffectiveConfig(const ConfigLookup& lookup,
                                                 const config::HostFacts& host) {
  absl::StatusOr<LoadedConfig> out;
  std::string via;
  if (!lookup.flag.empty()) {
    out = LoadConfigFile(lookup.flag, host);
    via = "--config";
  } else if (!lookup.env.empty()) {
    out = LoadConfigFile(lookup.env, host);
    via = "RUNVM_CONFIG";
  } else if (::access(lookup.system_path.c_str(), F_OK) == 0) {
    out = LoadConfigFile(lookup.system_path, host);
    via = lookup.system_path;
  } else {
    out = ParseConfig(PackagedConfigText(), kPackagedConfigName, host);
    via = "packaged default";
  }
  if (out.ok()) out->via = via;
  return out;
}

std::vector<std::string> CheckConfigFiles(const LoadedConfig& loaded) {
  std::vector<std::string> problems;
  const config::QemuConfig& q = loaded.config.hypervisor;
  auto check = [&](absl::string_view name, const std::string& path, int mode, const char* what) {
    if (path.empty()) return;
    if (::access(path.c_str(), mode) != 0) {
      problems.push_back(loaded.Describe(
          absl::StrCat("hypervisor.qemu.", name),
          absl::StrCat("\"", path, "\" is not ", what, ": ", std::strerror(errno))));
    }
  };
  check("path", q.path, X_OK, "executable");
  check("kernel", q.kernel, R_OK, "readable");
  check("initrd", q.initrd, R_OK, "readable");
  check("image", q.image, R_OK, "readable");
  if (!q.image.empty()) check("image_loader", q.image_loader, R_OK, "readable");
  check("firmware", q.firmware, R_OK, "readable");
  if (q.shared_fs == "virtio-fs") check("virtio_fs_daemon", q.virtio_fs_daemon, X_OK, "executable");
  if (q.enable_vhost_user_store) {
    check("vhost_user_store_path", q.vhost_user_store_path, F_OK, "present");
  }
  check("entropy_source", q.entropy_source, R_OK, "readable");
  return problems;
}

config::HostFacts HostFactsNow() {
  config::HostFacts facts;
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    facts.cpus = CPU_COUNT(&set);
  } else {
    facts.cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  }
  return facts;
}

}  // namespace runvm
