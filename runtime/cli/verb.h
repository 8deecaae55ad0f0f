// A verb of the command line as data: its name, its flags (each bound to where its value goes)
// and what it runs. Each verb lives in its own file (create.cc, exec.cc, ...) and returns its
// Verb; cli.cc holds the table of them and turns it into CLI11's parser, so that only cli.cc
// pays for CLI11's headers.
//
//   Verb StartVerb(const GlobalFlags& g) {
//     auto id = std::make_shared<std::string>();
//     return {.name = "start", .help = "start a created container",
//             .flags = {{.names = "id", .into = id.get(), .required = true}},
//             .run = [&g, id] { return Done(MakeContainers(g).Start(*id)); }};
//   }
#ifndef RUNVM_RUNTIME_CLI_VERB_H_
#define RUNVM_RUNTIME_CLI_VERB_H_

#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/config/loader.h"
#include "runtime/oci/containers.h"

namespace runvm {

// runc's global flags, and --config.
struct GlobalFlags {
  std::string root = "/run/runvm";
  std::string log;
  std::string log_format = "text";
  bool debug = false;
  bool systemd_cgroup = false;
  std::string config;
};

// One flag ("-b,--bundle": names starting with "-") or positional argument ("id").
struct Flag {
  std::string names;
  std::string help;
  // bool: a switch; a vector: one value per use, repeated for more.
  std::variant<bool*, int*, int64_t*, std::string*, std::vector<std::string>*> into;
  bool required = false;
  std::vector<std::string> choices;  // the values allowed; empty: any
  bool show_default = false;         // the help shows the value `into` holds now
};

struct Verb {
  std::string name;
  std::string help;  // empty: hidden from the help
  std::vector<Flag> flags;
  // As runc's exec and ps: options end at the first positional argument, which and everything
  // after it go here.
  std::vector<std::string>* rest = nullptr;
  std::string footer;
  std::vector<Verb> verbs;  // sub-verbs; one of them is required when `run` is empty
  std::function<int()> run;
};

// A verb whose only argument is a container's id (start, state, pause, resume).
Verb IdVerb(std::string name, std::string help, std::function<int(const std::string& id)> run);

// The verbs, one file each.
Verb EnvVerb(const GlobalFlags& g);
Verb CheckVerb(const GlobalFlags& g);
Verb SpecVerb(const GlobalFlags& g);
Verb CreateVerb(const GlobalFlags& g);
Verb RunVerb(const GlobalFlags& g);
Verb ExecVerb(const GlobalFlags& g);
Verb StartVerb(const GlobalFlags& g);
Verb StateVerb(const GlobalFlags& g);
Verb KillVerb(const GlobalFlags& g);
Verb DeleteVerb(const GlobalFlags& g);
Verb ListVerb(const GlobalFlags& g);
Verb PsVerb(const GlobalFlags& g);
Verb PauseVerb(const GlobalFlags& g);
Verb ResumeVerb(const GlobalFlags& g);
Verb UpdateVerb(const GlobalFlags& g);
Verb EventsVerb(const GlobalFlags& g);
Verb ShimVerb(const GlobalFlags& g);
Verb SandboxVerb(const GlobalFlags& g);

// ---- shared by the verbs ----

// Logs `message` as the fatal error and returns runc's exit code for it, 1.
int Fail(absl::string_view message);
// 0, or Fail with the status's message.
int Done(const absl::Status& st);
// The effective configuration (--config, $RUNVM_CONFIG, ...), its warnings logged.
absl::StatusOr<LoadedConfig> LoadConfig(const GlobalFlags& g);
// The OCI library over the root, with the shim started as this binary with the global flags.
Containers MakeContainers(const GlobalFlags& g);

// create's and run's flags, as runc spells them.
struct CreateFlags {
  std::string id;
  std::string bundle = ".";
  std::string pid_file;
  std::string console_socket;
  int preserve_fds = 0;
  bool no_pivot = false;
  bool no_new_keyring = false;
};
void AddCreateFlags(Verb& verb, CreateFlags& flags);
// Flags runc has that runvm cannot honour as asked: refused (RefuseHostOnlyFlags) or, for those
// engines pass routinely, warned about here.
absl::Status CheckCreateFlags(const CreateFlags& flags);

// Flags that ask for something a process in a VM cannot have: refused, never ignored.
absl::Status RefuseHostOnlyFlags(int preserve_fds, const std::string& process_label = "",
                                 const std::string& apparmor = "");

}  // namespace runvm

#endif  // RUNVM_RUNTIME_CLI_VERB_H_
