#include "persist/fields.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace runvm::persist {

using Json = nlohmann::json;

absl::Status Fields::Missing(absl::string_view field, absl::string_view kind) const {
  return absl::InvalidArgumentError(
      absl::StrCat(what_, ": field \"", field, "\" is missing or not ", kind));
}

absl::StatusOr<std::string> Fields::String(const char* field) const {
  auto it = j_.find(field);
  if (it == j_.end() || !it->is_string()) return Missing(field, "a string");
  return it->get<std::string>();
}

absl::StatusOr<int64_t> Fields::Int(const char* field) const {
  auto it = j_.find(field);
  if (it == j_.end() || !it->is_number_integer()) return Missing(field, "an integer");
  return it->get<int64_t>();
}

absl::StatusOr<bool> Fields::Bool(const char* field) const {
  auto it = j_.find(field);
  if (it == j_.end() || !it->is_boolean()) return Missing(field, "a boolean");
  return it->get<bool>();
}

absl::StatusOr<std::vector<std::string>> Fields::Strings(const char* field) const {
  auto it = j_.find(field);
  if (it == j_.end() || !it->is_array()) return Missing(field, "a list of strings");
  std::vector<std::string> out;
  for (const Json& e : *it) {
    if (!e.is_string()) return Missing(field, "a list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> Fields::StringMap(const char* field) const {
  auto it = j_.find(field);
  if (it == j_.end() || !it->is_object()) return Missing(field, "an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : it->items()) {
    if (!value.is_string()) return Missing(field, "an object of strings");
    out[key] = value.get<std::string>();
  }
  return out;
}

absl::StatusOr<ProcessIdentity> Fields::Identity(const char* field) const {
  auto it = j_.find(field);
  if (it == j_.end() || !it->is_object()) return Missing(field, "an object");
  const Json& o = *it;
  auto pid = o.find("pid");
  auto start = o.find("start_time");
  auto exe = o.find("exe");
  if (pid == o.end() || !pid->is_number_integer() || start == o.end() ||
      !start->is_number_unsigned() || exe == o.end() || !exe->is_string()) {
    return Missing(field, "a process identity {pid, start_time, exe}");
  }
  return ProcessIdentity{pid->get<pid_t>(), start->get<uint64_t>(), exe->get<std::string>()};
}

absl::StatusOr<std::optional<ProcessIdentity>> Fields::OptionalIdentity(const char* field) const {
  auto it = j_.find(field);
  if (it == j_.end() || it->is_null()) return std::nullopt;
  return Identity(field);
}

Json IdentityToJson(const ProcessIdentity& id) {
  return {{"pid", id.pid}, {"start_time", id.start_time}, {"exe", id.exe}};
}

}  // namespace runvm::persist
