// Whole-file helpers. Errors name the path.
#ifndef RUNVM_BASE_FILE_H_
#define RUNVM_BASE_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace runvm {

// Reads the whole file. Refuses files larger than `max_bytes` (FailedPrecondition).
absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes = 16 << 20);

// Writes `data` to `path` atomically: a temporary file in the same directory, fsync, rename,
// fsync of the directory. On failure `path` keeps its previous content.
absl::Status WriteFileAtomic(const std::string& path, absl::string_view data, int mode = 0644);

// A path field of /proc/<pid>/mountinfo with its octal escapes ("\040" for a space) undone.
std::string UnescapeMountPath(absl::string_view field);

}  // namespace runvm

#endif  // RUNVM_BASE_FILE_H_
