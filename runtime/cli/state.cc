// `runvm state ID`: runc's state JSON.
#include <iostream>
#include <memory>

#include "runtime/cli/verb.h"

namespace runvm {

Verb StateVerb(const GlobalFlags& g) {
  auto id = std::make_shared<std::string>();
  return {.name = "state",
          .help = "print a container's state as JSON",
          .flags = {{.names = "id", .into = id.get(), .required = true}},
          .run = [&g, id] {
            absl::StatusOr<OciState> state = MakeContainers(g).State(*id);
            if (!state.ok()) return Fail(state.status().message());
            std::cout << OciStateJson(*state) << "\n";
            return 0;
          }};
}

}  // namespace runvm
