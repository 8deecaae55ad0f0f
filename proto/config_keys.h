// The key table: one row per configuration.toml key, shared by the TOML loader, the JSON and
// TOML renderers (`runvm env`), annotation overrides and the tests, so a key is described once.
//
//   for (const KeyInfo& k : AllKeys()) std::cout << k.Path() << "\n";
//   const KeyInfo* k = FindKey("hypervisor.qemu", "default_vcpus");
//   ConfigValue v = k->get(config);
#ifndef RUNVM_PROTO_CONFIG_KEYS_H_
#define RUNVM_PROTO_CONFIG_KEYS_H_

#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>
#include "absl/strings/string_view.h"

#include "proto/config.h"

namespace runvm::config {

enum class ValueKind { kBool, kInt, kString, kStringList };

// What one key holds: exactly the alternative its ValueKind names.
using ConfigValue = std::variant<bool, int64_t, std::string, std::vector<std::string>>;

absl::string_view KindName(ValueKind kind);  // "a boolean", "an integer", ...

struct KeyInfo {
  absl::string_view table;  // "hypervisor.qemu", "agent.kata" or "runtime"
  absl::string_view name;   // "default_vcpus"
  ValueKind kind;
  int64_t min = 0;  // inclusive bounds, for kInt
  int64_t max = 0;
  std::span<const char* const> allowed;  // for enum strings; empty: any string
  // For path keys: the key listing the globs a path from an annotation must match.
  absl::string_view path_globs_key;
  // False for keys that guard annotations themselves (enable_annotations, valid_*_paths).
  bool annotatable = true;
  ConfigValue (*get)(const Config&);
  void (*set)(Config&, const ConfigValue&);

  std::string Path() const { return std::string(table) + "." + std::string(name); }
  // Checks range and allowed values; returns the message for a bad value, empty when fine.
  std::string CheckValue(const ConfigValue& v) const;
};

// Every key, in configuration.toml order.
std::span<const KeyInfo> AllKeys();
// The row for table + name, or nullptr.
const KeyInfo* FindKey(absl::string_view table, absl::string_view name);

// Renders a value the way TOML writes it: true, 42, "text", ["a", "b"].
std::string RenderTomlValue(const ConfigValue& v);

}  // namespace runvm::config

#endif  // RUNVM_PROTO_CONFIG_KEYS_H_
