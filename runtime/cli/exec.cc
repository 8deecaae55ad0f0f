// `runvm exec [OPTIONS] ID [COMMAND [ARG...]]`: a further process in a running container, with
// runc's flags; exits with the process's status in the foreground, 255 when exec itself fails.
#include <memory>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/log.h"
#include "runtime/cli/verb.h"
#include "runtime/oci/shim.h"

namespace runvm {
namespace {

// runc exits 255 when exec itself fails (as opposed to the process's own status).
constexpr int kExecFailed = 255;

}  // namespace

Verb ExecVerb(const GlobalFlags& g) {
  struct Flags {
    ExecRequest exec;
    std::string process_file;
    std::string console_socket;
    std::string pid_file;
    bool detach = false;
    int preserve_fds = 0;
    std::string process_label;
    std::string apparmor;
    std::vector<std::string> rest;  // the id, then the command
  };
  auto f = std::make_shared<Flags>();
  return {
      .name = "exec",
      .help = "run a further process in a running container",
      .flags =
          {{.names = "-p,--process",
            .help = "the process as OCI JSON (engines pass this)",
            .into = &f->process_file},
           {.names = "-t,--tty",
            .help = "a terminal (with --console-socket)",
            .into = &f->exec.tty},
           {.names = "--console-socket",
            .help = "a unix socket to send the terminal's master to",
            .into = &f->console_socket},
           {.names = "-d,--detach", .help = "return once it runs", .into = &f->detach},
           {.names = "--pid-file",
            .help = "write the process's pid (its shim's) here",
            .into = &f->pid_file},
           {.names = "--cwd", .help = "working directory in the container", .into = &f->exec.cwd},
           {.names = "-e,--env",
            .help = "NAME=value, added to the container's",
            .into = &f->exec.env},
           {.names = "-u,--user", .help = "uid[:gid]", .into = &f->exec.user},
           {.names = "-c,--cap",
            .help = "a capability to add, e.g. CAP_NET_ADMIN",
            .into = &f->exec.caps},
           {.names = "--no-new-privs",
            .help = "set no_new_privileges",
            .into = &f->exec.no_new_privs},
           {.names = "-g,--additional-gids",
            .help = "a further group of the process (repeat it for more)",
            .into = &f->exec.additional_gids},
           {.names = "--preserve-fds",
            .help = "not supported in a VM: must be 0",
            .into = &f->preserve_fds},
           {.names = "--process-label",
            .help = "not supported in the guest",
            .into = &f->process_label},
           {.names = "--apparmor", .help = "not supported in the guest", .into = &f->apparmor}},
      // As runc: options end at the first argument, the id; what follows is the command's.
      .rest = &f->rest,
      .footer = "Usage: runvm exec [OPTIONS] ID [COMMAND [ARG...]]",
      .run = [&g, f] {
        auto fail = [](absl::string_view message) {
          (void)Fail(message);
          return kExecFailed;
        };
        if (absl::Status st = RefuseHostOnlyFlags(f->preserve_fds, f->process_label, f->apparmor);
            !st.ok()) {
          return fail(st.message());
        }
        if (f->rest.empty()) return fail("exec: the container id is missing");
        ExecRequest req = f->exec;
        req.id = f->rest.front();
        req.args.assign(f->rest.begin() + 1, f->rest.end());
        req.pid_file = f->pid_file;
        req.console_socket = f->console_socket;
        req.detach = f->detach;
        if (!f->process_file.empty()) {
          absl::StatusOr<std::string> text = ReadFile(f->process_file);
          if (!text.ok()) return fail(absl::StrCat("--process: ", text.status().message()));
          req.process_json = *text;
        }
        absl::StatusOr<Child> shim = MakeContainers(g).Exec(req);
        if (!shim.ok()) return fail(shim.status().message());
        LogDebug(absl::StrCat("exec in ", req.id, ": shim ", shim->pid()));
        if (f->detach) {
          shim->Release();
          return 0;
        }
        absl::StatusOr<ExitStatus> exit = WaitPassingSignals(*shim);
        if (!exit.ok()) return fail(exit.status().message());
        return exit->ShellCode() & 0xff;
      }};
}

}  // namespace runvm
