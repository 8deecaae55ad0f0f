// QEMU option strings ("driver,key=value,key=value") built in order, with QEMU's escaping:
// a "," inside a value is written ",,". NUL and newline cannot be expressed and are refused.
//
//   Options o("memory-backend-file");
//   o.Add("id", "dimm1").Add("mem-path", path).Add("share", true);
//   ASSIGN_OR_RETURN(std::string arg, o.Render());   // memory-backend-file,id=dimm1,...
#ifndef RUNVM_HYPERVISOR_QEMU_OPTIONS_H_
#define RUNVM_HYPERVISOR_QEMU_OPTIONS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace runvm::qemu {

// Escapes one value: "," -> ",,". Refuses NUL and newline (InvalidArgument naming `what`).
absl::StatusOr<std::string> EscapeOptionValue(absl::string_view value, absl::string_view what);

class Options {
 public:
  Options() = default;
  // The leading bare word (a driver or type), written first and escaped like a value.
  explicit Options(absl::string_view head) : head_(head) {}

  Options& Add(absl::string_view key, absl::string_view value);
  Options& Add(absl::string_view key, const char* value) {
    return Add(key, absl::string_view(value));
  }
  Options& Add(absl::string_view key, const std::string& value) {
    return Add(key, absl::string_view(value));
  }
  Options& Add(absl::string_view key, int64_t value);
  Options& Add(absl::string_view key, int value) { return Add(key, static_cast<int64_t>(value)); }
  Options& Add(absl::string_view key, bool value) { return Add(key, value ? "on" : "off"); }
  // Appends an already rendered "k=v,k2=v2" list (e.g. the machine_accelerators key) verbatim.
  Options& AddRaw(absl::string_view rendered);

  absl::StatusOr<std::string> Render() const;

 private:
  std::string head_;
  std::vector<std::pair<std::string, std::string>> items_;  // key (empty for raw), value
};

}  // namespace runvm::qemu

#endif  // RUNVM_HYPERVISOR_QEMU_OPTIONS_H_
