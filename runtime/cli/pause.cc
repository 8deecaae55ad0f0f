// `runvm pause ID` and `runvm resume ID`: the container frozen in the guest (and its VM stopped
// when it is alone there), and thawed.
#include "runtime/cli/verb.h"

namespace runvm {

Verb PauseVerb(const GlobalFlags& g) {
  return IdVerb("pause", "freeze a running container (and its VM when it is alone there)",
                [&g](const std::string& id) { return Done(MakeContainers(g).Pause(id)); });
}

Verb ResumeVerb(const GlobalFlags& g) {
  return IdVerb("resume", "thaw a paused container",
                [&g](const std::string& id) { return Done(MakeContainers(g).Resume(id)); });
}

}  // namespace runvm
