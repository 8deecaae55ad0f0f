// `runvm pause ID` and `runvm resume ID`: the container frozen in the guest (and its VM stopped
// when it is alone there), and thawed.
#include <memory>

#include "runtime/cli/verb.h"

namespace runvm {

Verb PauseVerb(const GlobalFlags& g) {
  auto id = std::make_shared<std::string>();
  return {.name = "pause",
          .help = "freeze a running container (and its VM when it is alone there)",
          .flags = {{.names = "id", .into = id.get(), .required = true}},
          .run = [&g, id] { return Done(MakeContainers(g).Pause(*id)); }};
}

Verb ResumeVerb(const GlobalFlags& g) {
  auto id = std::make_shared<std::string>();
  return {.name = "resume",
          .help = "thaw a paused container",
          .flags = {{.names = "id", .into = id.get(), .required = true}},
          .run = [&g, id] { return Done(MakeContainers(g).Resume(*id)); }};
}

}  // namespace runvm
