// `runvm create [-b BUNDLE] [--pid-file F] [--console-socket S] ID`: the container and its VM
// (or its place in its pod's VM); its process waits for `start`. The shim stays behind as the
// container's pid.
#include <memory>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "runtime/cli/verb.h"

namespace runvm {

void AddCreateFlags(Verb& verb, CreateFlags& f) {
  verb.flags.insert(
      verb.flags.end(),
      {{.names = "-b,--bundle", .help = "the bundle directory (default: .)", .into = &f.bundle},
       {.names = "--pid-file",
        .help = "write the container's pid (the shim's) here",
        .into = &f.pid_file},
       {.names = "--console-socket",
        .help = "a unix socket to send the terminal's master to",
        .into = &f.console_socket},
       {.names = "--no-pivot",
        .help = "not passed on: the guest pivots the root when it can (a warning)",
        .into = &f.no_pivot},
       {.names = "--no-new-keyring",
        .help = "what runvm does anyway: the guest makes no session keyring",
        .into = &f.no_new_keyring},
       {.names = "--preserve-fds", .help = "not supported: must be 0", .into = &f.preserve_fds},
       {.names = "id", .help = "container id", .into = &f.id, .required = true}});
}

absl::Status CheckCreateFlags(const CreateFlags& f) {
  RETURN_IF_ERROR(RefuseHostOnlyFlags(f.preserve_fds));
  if (f.no_pivot) {
    LogWarning(absl::StrCat("container ", f.id,
                            ": --no-pivot is not passed on: the guest switches the container's "
                            "root with pivot_root where it can, and by moving it only when not"));
  }
  return absl::OkStatus();
}

Verb CreateVerb(const GlobalFlags& g) {
  auto f = std::make_shared<CreateFlags>();
  Verb v{.name = "create",
         .help = "create a container (its VM boots; the process waits)",
         .run = [&g, f] {
           if (absl::Status st = CheckCreateFlags(*f); !st.ok()) {
             return Fail(st.message());
           }
           absl::StatusOr<Child> shim =
               MakeContainers(g).Create({.id = f->id,
                                         .bundle = f->bundle,
                                         .pid_file = f->pid_file,
                                         .console_socket = f->console_socket,
                                         .detach = true});
           if (!shim.ok()) return Fail(shim.status().message());
           LogDebug(absl::StrCat("create ", f->id, ": created, shim ", shim->pid()));
           shim->Release();  // the engine's subreaper adopts it
           return 0;
         }};
  AddCreateFlags(v, *f);
  return v;
}

}  // namespace runvm
