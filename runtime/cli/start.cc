// `runvm start ID`: the created container's process runs.
#include "runtime/cli/verb.h"

namespace runvm {

Verb StartVerb(const GlobalFlags& g) {
  return IdVerb("start", "start a created container",
                [&g](const std::string& id) { return Done(MakeContainers(g).Start(id)); });
}

}  // namespace runvm
