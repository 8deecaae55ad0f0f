// `runvm start ID`: the created container's process runs.
#include <memory>

#include "runtime/cli/verb.h"

namespace runvm {

Verb StartVerb(const GlobalFlags& g) {
  auto id = std::make_shared<std::string>();
  return {.name = "start",
          .help = "start a created container",
          .flags = {{.names = "id", .into = id.get(), .required = true}},
          .run = [&g, id] { return Done(MakeContainers(g).Start(*id)); }};
}

}  // namespace runvm
