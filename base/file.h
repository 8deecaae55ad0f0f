// Whole-file helpers. Errors name the path.
#ifndef RUNVM_BASE_FILE_H_
#define RUNVM_BASE_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace runvm {

// Reads the whole file. Refuses files larger than `max_bytes` (FailedPrecondition).
absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes = 16 << 20);

// Makes `path` and its missing parents, each with `mode` (0700 for runvm's state: the caller's
// umask can only narrow it). An existing directory is left as it is.
absl::Status MakeDirectories(const std::string& path, int mode = 0700);

// Writes `data` to `path` atomically: a temporary file in the same directory, fsync, rename,
// fsync of the directory. On failure `path` keeps its previous content.
absl::Status WriteFileAtomic(const std::string& path, absl::string_view data, int mode = 0644);

// A path field of /proc/<pid>/mountinfo with its octal escapes ("\040" for a space) undone.
std::string UnescapeMountPath(absl::string_view field);

}  // namespace runvm

#endif  // RUNVM_BASE_FILE_H_
