// `runvm run [-d] ...create's flags... ID`: create and start; in the foreground it waits for the
// workload (passing on the signals it is sent), removes the container and exits with the
// workload's status, as runc does.
#include <signal.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "runtime/cli/verb.h"
#include "runtime/oci/shim.h"

namespace runvm {

Verb RunVerb(const GlobalFlags& g) {
  struct Flags : CreateFlags {
    bool detach = false;
  };
  auto f = std::make_shared<Flags>();
  Verb v{.name = "run",
         .help = "create and start a container; wait for it unless --detach",
         .flags = {{.names = "-d,--detach", .help = "return once it runs", .into = &f->detach}},
         .run = [&g, f] {
           if (absl::Status st = CheckCreateFlags(*f); !st.ok()) {
             return Fail(st.message());
           }
           Containers containers = MakeContainers(g);
           const bool foreground = !f->detach;
           absl::StatusOr<Child> shim = containers.Create({.id = f->id,
                                                           .bundle = f->bundle,
                                                           .pid_file = f->pid_file,
                                                           .console_socket = f->console_socket,
                                                           .detach = !foreground});
           if (!shim.ok()) return Fail(shim.status().message());
           LogDebug(absl::StrCat("run ", f->id, ": created, shim ", shim->pid()));
           // From here on the shim passes on what it is sent; run does from its wait on (they
           // queue).
           const sigset_t forwarded = ForwardedSignals();
           if (foreground) ::sigprocmask(SIG_BLOCK, &forwarded, nullptr);
           if (absl::Status st = containers.Start(f->id); !st.ok()) {
             (void)containers.Delete(f->id, /*force=*/true);
             return Fail(st.message());
           }
           if (!foreground) {
             shim->Release();
             return 0;
           }
           absl::StatusOr<ExitStatus> exit = WaitPassingSignals(*shim);
           absl::Status removed = containers.Delete(f->id, /*force=*/true);
           if (!exit.ok()) return Fail(exit.status().message());
           if (!removed.ok()) LogError(removed.message());
           return exit->ShellCode() & 0xff;
         }};
  AddCreateFlags(v, *f);
  return v;
}

}  // namespace runvm
