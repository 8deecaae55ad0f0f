// The state store: versioned JSON records written atomically, read strictly.
//
//   Store store("/run/runvm");
//   RETURN_IF_ERROR(store.Save("sandboxes/abc/sandbox.json", kSandboxFormat, 2, record));
//   ASSIGN_OR_RETURN(Json record, store.Load("sandboxes/abc/sandbox.json", kSandboxFormat, 2,
//                                            MigrateSandbox));
//
// On disk a record is pretty JSON an operator can read:
//   {"format": "runvm.sandbox", "version": 2, "data": {...}}
// Writes go to a temporary file in the same directory, are fsynced, renamed over the record, and
// the directory is fsynced: after a crash or a full disk the previous record is intact.
// A record that cannot be read (empty, truncated, not JSON, another format) is moved aside to
// "<name>.corrupt-<unix seconds>" and reported with both paths; it is never silently dropped. A
// record from a newer runvm is refused (and left in place) with both versions named; an older one
// goes through the caller's migration.
//
// Threading: a Store holds no state besides its root; callers serialise writers with Lock.
#ifndef RUNVM_PERSIST_STORE_H_
#define RUNVM_PERSIST_STORE_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace runvm::persist {

using Json = nlohmann::json;

// Turns `data` written by version `from` into the current version's shape.
using Migration = std::function<absl::StatusOr<Json>(int from, Json data)>;

class Store {
 public:
  explicit Store(std::string root) : root_(std::move(root)) {}

  const std::string& root() const { return root_; }
  std::string PathOf(const std::string& key) const { return root_ + "/" + key; }

  // Writes the record at `key` (a relative path; parent directories are created, 0700).
  absl::Status Save(const std::string& key, const std::string& format, int version,
                    const Json& data) const;

  // Reads the record at `key`: NotFound when absent; DataLoss (after quarantining it) when
  // unreadable; FailedPrecondition for a newer version; older versions through `migrate` (an
  // older record without a migration is FailedPrecondition).
  absl::StatusOr<Json> Load(const std::string& key, const std::string& format, int version,
                            const Migration& migrate = nullptr) const;

  // Removes the record (absent is fine).
  absl::Status Remove(const std::string& key) const;

  // The names of the entries of directory `key` (absent: empty), sorted, without temporary files.
  absl::StatusOr<std::vector<std::string>> List(const std::string& key) const;

 private:
  std::string root_;
};

}  // namespace runvm::persist

#endif  // RUNVM_PERSIST_STORE_H_
