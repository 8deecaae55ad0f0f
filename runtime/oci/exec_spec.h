// An exec's process: the container's spec (its bundle's config.json) with the process replaced,
// by runc's exec flags or by the engine's --process JSON, as the agent takes it (which joins the
// container's namespaces and keeps its seccomp filter from the rest).
//
//   ASSIGN_OR_RETURN(std::string spec_json, ExecSpec(record.bundle, request));
#ifndef RUNVM_RUNTIME_OCI_EXEC_SPEC_H_
#define RUNVM_RUNTIME_OCI_EXEC_SPEC_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace runvm {

struct ExecRequest {
  std::string id;
  std::string process_json;
  std::vector<std::string> args;
  bool tty = false;
  std::string cwd;
  std::vector<std::string> env;              // added to the container's
  std::string user;                          // uid[:gid]
  std::vector<std::string> additional_gids;  // --additional-gids, numbers
  std::vector<std::string> caps;             // added to every capability set
  bool no_new_privs = false;
  std::string pid_file;
  std::string console_socket;
  bool detach = false;
};

// Reads <bundle>/config.json and applies `req` (ExecSpecFrom).
absl::StatusOr<std::string> ExecSpec(const std::string& bundle, const ExecRequest& req);
// The spec JSON to send: `config_json` (read from `path`, named in errors) with the process
// replaced. InvalidArgument, naming the flag, for a malformed --user or --additional-gids, a
// --process that is not an object, no command, an invalid result, or a terminal without a
// console socket (and the reverse), in runc's words.
absl::StatusOr<std::string> ExecSpecFrom(const std::string& config_json, const std::string& path,
                                         const ExecRequest& req);

}  // namespace runvm

#endif  // RUNVM_RUNTIME_OCI_EXEC_SPEC_H_
