// `runvm delete [-f] ID`: the container, and its VM when it owns one.
#include <memory>

#include "runtime/cli/verb.h"

namespace runvm {

Verb DeleteVerb(const GlobalFlags& g) {
  struct Flags {
    std::string id;
    bool force = false;
  };
  auto f = std::make_shared<Flags>();
  return {.name = "delete",
          .help = "delete a container and its VM",
          .flags = {{.names = "-f,--force",
                     .help = "kill it if it runs; an unknown id is no error",
                     .into = &f->force},
                    {.names = "id", .into = &f->id, .required = true}},
          .run = [&g, f] { return Done(MakeContainers(g).Delete(f->id, f->force)); }};
}

}  // namespace runvm
