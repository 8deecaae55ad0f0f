// `runvm state ID`: runc's state JSON.
#include <iostream>

#include "runtime/cli/verb.h"

namespace runvm {

Verb StateVerb(const GlobalFlags& g) {
  return IdVerb("state", "print a container's state as JSON", [&g](const std::string& id) {
    absl::StatusOr<OciState> state = MakeContainers(g).State(id);
    if (!state.ok()) return Fail(state.status().message());
    std::cout << OciStateJson(*state) << "\n";
    return 0;
  });
}

}  // namespace runvm
