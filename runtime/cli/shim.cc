// `runvm shim`: started by create and exec, hidden from the help (runtime/oci/shim.h).
#include <memory>

#include "runtime/cli/verb.h"
#include "runtime/oci/shim.h"

namespace runvm {

Verb ShimVerb(const GlobalFlags&) {
  auto f = std::make_shared<ShimOptions>();
  return {.name = "shim",
          .help = "",
          .flags = {{.names = "--port", .into = &f->port_socket, .required = true},
                    {.names = "--ready-fd", .into = &f->ready_fd},
                    {.names = "--console-socket", .into = &f->console_socket},
                    {.names = "id", .into = &f->id, .required = true}},
          .run = [f] { return RunShim(*f); }};
}

}  // namespace runvm
