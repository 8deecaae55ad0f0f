// Strict readers for the fields of a record, shared by every record's codec: a field that is
// absent or of another kind is an InvalidArgument naming the record and the field.
//
//   persist::Fields f(j, "container record");
//   ASSIGN_OR_RETURN(r.id, f.String("id"));
//   ASSIGN_OR_RETURN(r.shim, f.OptionalIdentity("shim"));   // null or {pid, start_time, exe}
#ifndef RUNVM_PERSIST_FIELDS_H_
#define RUNVM_PERSIST_FIELDS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/process_identity.h"
#include "nlohmann/json_fwd.hpp"

namespace runvm::persist {

class Fields {
 public:
  // `object` must outlive this reader.
  Fields(const nlohmann::json& object, absl::string_view what) : j_(object), what_(what) {}

  // "<what>: field "<field>" is missing or not <kind>".
  absl::Status Missing(absl::string_view field, absl::string_view kind) const;

  absl::StatusOr<std::string> String(const char* field) const;
  absl::StatusOr<int64_t> Int(const char* field) const;
  absl::StatusOr<bool> Bool(const char* field) const;
  absl::StatusOr<std::vector<std::string>> Strings(const char* field) const;
  absl::StatusOr<std::map<std::string, std::string>> StringMap(const char* field) const;
  absl::StatusOr<ProcessIdentity> Identity(const char* field) const;
  // null (or absent) is nullopt.
  absl::StatusOr<std::optional<ProcessIdentity>> OptionalIdentity(const char* field) const;

 private:
  const nlohmann::json& j_;
  std::string what_;
};

nlohmann::json IdentityToJson(const ProcessIdentity& id);

}  // namespace runvm::persist

#endif  // RUNVM_PERSIST_FIELDS_H_
