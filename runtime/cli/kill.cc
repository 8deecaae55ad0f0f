// `runvm kill [-a] ID [SIGNAL]`: a signal to the container's init (or every process of it).
#include <memory>

#include "runtime/cli/verb.h"

namespace runvm {

Verb KillVerb(const GlobalFlags& g) {
  struct Flags {
    std::string id;
    std::string signal = "TERM";
    bool all = false;
  };
  auto f = std::make_shared<Flags>();
  return {
      .name = "kill",
      .help = "send a signal to a container's init (default TERM)",
      .flags = {{.names = "-a,--all", .help = "to every process of the container", .into = &f->all},
                {.names = "id", .into = &f->id, .required = true},
                {.names = "signal", .help = "name (KILL, SIGKILL) or number", .into = &f->signal}},
      .run = [&g, f] { return Done(MakeContainers(g).Kill(f->id, f->signal, f->all)); }};
}

}  // namespace runvm
