#include "proto/config_codec.h"

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "nlohmann/json.hpp"
#include "proto/config_keys.h"

namespace runvm::config {
namespace {

using nlohmann::ordered_json;

// "hypervisor.qemu" -> the JSON pointer /hypervisor/qemu
nlohmann::json::json_pointer TablePointer(absl::string_view table) {
  std::string p = "/" + std::string(table);
  for (char& c : p) c = c == '.' ? '/' : c;
  return nlohmann::json::json_pointer(p);
}

ordered_json ValueToJson(const ConfigValue& v) {
  return std::visit([](const auto& x) { return ordered_json(x); }, v);
}

absl::StatusOr<ConfigValue> ValueFromJson(const KeyInfo& key, const nlohmann::json& j) {
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", KindName(key.kind), ", got ", j.dump()));
  };
  switch (key.kind) {
    case ValueKind::kBool:
      if (!j.is_boolean()) return bad();
      return ConfigValue(j.get<bool>());
    case ValueKind::kInt:
      if (!j.is_number_integer()) return bad();
      if (j.is_number_unsigned() && j.get<uint64_t>() > INT64_MAX) return bad();
      return ConfigValue(j.get<int64_t>());
    case ValueKind::kString:
      if (!j.is_string()) return bad();
      return ConfigValue(j.get<std::string>());
    case ValueKind::kStringList: {
      if (!j.is_array()) return bad();
      std::vector<std::string> list;
      for (const auto& e : j) {
        if (!e.is_string()) return bad();
        list.push_back(e.get<std::string>());
      }
      return ConfigValue(std::move(list));
    }
  }
  return bad();
}

// Walks `j` and reports the first member the key table does not know.
absl::Status CheckKnown(const nlohmann::json& j, const std::string& prefix) {
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix.empty() ? "configuration" : prefix, ": expected an object"));
  }
  for (const auto& [name, value] : j.items()) {
    std::string path = prefix.empty() ? name : absl::StrCat(prefix, ".", name);
    bool is_table = path == "hypervisor" || path == "hypervisor.qemu" || path == "agent" ||
                    path == "agent.kata" || path == "runtime";
    if (is_table) {
      if (path == "hypervisor" || path == "agent") {
        absl::Status st = CheckKnown(value, path);
        if (!st.ok()) return st;
      } else if (!value.is_object()) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": expected an object"));
      }
      if (path == "hypervisor.qemu" || path == "agent.kata" || path == "runtime") {
        for (const auto& [key, unused] : value.items()) {
          if (FindKey(path, key) == nullptr) {
            return absl::InvalidArgumentError(absl::StrCat(path, ".", key, ": unknown key"));
          }
        }
      }
      continue;
    }
    return absl::InvalidArgumentError(absl::StrCat(path, ": unknown key"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string ToJson(const Config& config, int indent) {
  ordered_json root;
  for (const KeyInfo& key : AllKeys()) {
    root[TablePointer(key.table) / std::string(key.name)] = ValueToJson(key.get(config));
  }
  return root.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<Config> FromJson(absl::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("configuration: invalid JSON");
  if (absl::Status st = CheckKnown(j, ""); !st.ok()) return st;
  Config config;
  for (const KeyInfo& key : AllKeys()) {
    auto ptr = TablePointer(key.table) / std::string(key.name);
    if (!j.contains(ptr)) continue;
    absl::StatusOr<ConfigValue> v = ValueFromJson(key, j.at(ptr));
    if (!v.ok()) return Annotate(v.status(), key.Path());
    if (std::string why = key.CheckValue(*v); !why.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(key.Path(), ": ", why));
    }
    key.set(config, *v);
  }
  return config;
}

namespace {
constexpr absl::string_view kQemuTable = "hypervisor.qemu";
}  // namespace

nlohmann::json QemuToJson(const QemuConfig& qemu) {
  Config whole;
  whole.hypervisor = qemu;
  nlohmann::json j = nlohmann::json::object();
  for (const KeyInfo& key : AllKeys()) {
    if (key.table != kQemuTable) continue;
    std::visit([&](const auto& x) { j[std::string(key.name)] = x; }, key.get(whole));
  }
  return j;
}

absl::StatusOr<QemuConfig> QemuFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(kQemuTable, ": not a table"));
  Config whole;
  size_t known = 0;
  for (const KeyInfo& key : AllKeys()) {
    if (key.table != kQemuTable) continue;
    auto it = j.find(std::string(key.name));
    if (it == j.end()) continue;
    ++known;
    absl::StatusOr<ConfigValue> v = ValueFromJson(key, *it);
    if (!v.ok()) return Annotate(v.status(), key.Path());
    if (std::string why = key.CheckValue(*v); !why.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(key.Path(), ": ", why));
    }
    key.set(whole, *v);
  }
  if (known != j.size()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (FindKey(kQemuTable, it.key()) == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(kQemuTable, ".", it.key(), ": unknown key"));
      }
    }
  }
  return whole.hypervisor;
}

absl::StatusOr<ConfigValue> ValueFromJsonText(const KeyInfo& key, absl::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", KindName(key.kind), ", got \"", text, "\""));
  }
  return ValueFromJson(key, j);
}

std::string ToToml(const Config& config) {
  std::string out;
  absl::string_view table;
  for (const KeyInfo& key : AllKeys()) {
    if (key.table != table) {
      table = key.table;
      absl::StrAppend(&out, out.empty() ? "" : "\n", "[", table, "]\n");
    }
    absl::StrAppend(&out, key.name, " = ", RenderTomlValue(key.get(config)), "\n");
  }
  return out;
}

}  // namespace runvm::config
