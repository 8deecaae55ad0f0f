// Status helpers shared by every layer.
//
// Debian's abseil (20220623) ships absl::Status and absl::StatusOr but no propagation macros,
// so they live here, once:
//
//   absl::StatusOr<Config> Load(const std::string& path) {
//     ASSIGN_OR_RETURN(std::string text, ReadFile(path));
//     RETURN_IF_ERROR(Validate(text));
//     ...
//   }
//
// Errno is converted exactly once, at the failing call: `return ErrnoError("open " + path);`.
#ifndef RUNVM_BASE_STATUS_H_
#define RUNVM_BASE_STATUS_H_

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace runvm {

// The status for the current errno, with `what` (the operation and its object) in front:
// "open /etc/runvm/configuration.toml: No such file or directory".
absl::Status ErrnoError(absl::string_view what);
// The same for an explicit errno value.
absl::Status ErrnoError(int err, absl::string_view what);

// Returns `status` with `context` prepended ("context: message"), keeping its code and payloads
// (so a QMP error class survives).
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace runvm

#define RUNVM_STATUS_CONCAT_INNER_(a, b) a##b
#define RUNVM_STATUS_CONCAT_(a, b) RUNVM_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) and returns it from the enclosing function if not OK.
#define RETURN_IF_ERROR(expr)                                         \
  do {                                                                \
    if (::absl::Status runvm_status_ = (expr); !runvm_status_.ok()) { \
      return runvm_status_;                                           \
    }                                                                 \
  } while (false)

#define RUNVM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                 \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(tmp).value()

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, otherwise assigns or
// declares `lhs` from the value: ASSIGN_OR_RETURN(auto fd, Open(path));
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  RUNVM_ASSIGN_OR_RETURN_IMPL_(RUNVM_STATUS_CONCAT_(runvm_statusor_, __LINE__), lhs, rexpr)

#endif  // RUNVM_BASE_STATUS_H_
