// `runvm check [--verbose] [--boot]`: can this host run sandboxes (runtime/host/check.h).
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "runtime/cli/verb.h"
#include "runtime/host/check.h"

namespace runvm {

Verb CheckVerb(const GlobalFlags& g) {
  struct Flags {
    bool verbose = false;
    bool boot = false;
  };
  auto f = std::make_shared<Flags>();
  return {
      .name = "check",
      .help = "check that this host can run sandboxes",
      .flags = {{.names = "--verbose",
                 .help = "also list configuration warnings",
                 .into = &f->verbose},
                {.names = "--boot",
                 .help = "also boot a throwaway sandbox VM and wait for its guest (a few seconds)",
                 .into = &f->boot}},
      .run = [&g, f] {
        absl::StatusOr<LoadedConfig> loaded = LoadConfig(g);
        if (!loaded.ok()) return Fail(loaded.status().message());
        std::vector<CheckResult> results = CheckHost(
            *loaded, HostPaths{}, CheckOptions{.boot = f->boot, .socket_base = g.root + "/.vm"});
        std::string text;
        const bool pass = RenderCheck(results, &text);
        if (f->verbose) {
          for (const std::string& w : loaded->warnings) text += "warning: " + w + "\n";
        }
        std::cout << text;
        if (pass) return 0;
        std::string reasons;
        for (const CheckResult& r : results) {
          if (r.level == CheckLevel::kFail) {
            absl::StrAppend(&reasons, reasons.empty() ? "" : "; ", r.name, ": ", r.detail);
          }
        }
        return Fail(absl::StrCat("host check failed: ", reasons));
      }};
}

}  // namespace runvm
