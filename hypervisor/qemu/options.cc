#include "hypervisor/qemu/options.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace runvm::qemu {

absl::StatusOr<std::string> EscapeOptionValue(absl::string_view value, absl::string_view what) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\0' || c == '\n') {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": a NUL or newline cannot be passed to QEMU (value \"",
                       absl::CHexEscape(value), "\")"));
    }
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

Options& Options::Add(absl::string_view key, absl::string_view value) {
  items_.emplace_back(std::string(key), std::string(value));
  return *this;
}

Options& Options::Add(absl::string_view key, int64_t value) {
  return Add(key, absl::StrCat(value));
}

Options& Options::AddRaw(absl::string_view rendered) {
  if (!rendered.empty()) items_.emplace_back("", std::string(rendered));
  return *this;
}

absl::StatusOr<std::string> Options::Render() const {
  std::string out;
  if (!head_.empty()) {
    ASSIGN_OR_RETURN(out, EscapeOptionValue(head_, head_));
  }
  for (const auto& [key, value] : items_) {
    if (!out.empty()) out += ',';
    if (key.empty()) {
      if (value.find_first_of(std::string("\n\0", 2)) != std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("option list \"", absl::CHexEscape(value), "\" has a NUL or newline"));
      }
      out += value;
      continue;
    }
    ASSIGN_OR_RETURN(std::string v, EscapeOptionValue(value, key));
    absl::StrAppend(&out, key, "=", v);
  }
  return out;
}

}  // namespace runvm::qemu
