// `runvm env [--json]`: the effective configuration and where it came from.
#include <iostream>
#include <memory>

#include "nlohmann/json.hpp"
#include "proto/config_codec.h"
#include "runtime/cli/verb.h"
#include "runtime/cli/version.h"

namespace runvm {

Verb EnvVerb(const GlobalFlags& g) {
  auto json = std::make_shared<bool>(false);
  return {.name = "env",
          .help = "print the effective configuration",
          .flags = {{.names = "--json", .help = "as JSON instead of TOML", .into = json.get()}},
          .run = [&g, json] {
            absl::StatusOr<LoadedConfig> loaded = LoadConfig(g);
            if (!loaded.ok()) return Fail(loaded.status().message());
            if (*json) {
              nlohmann::ordered_json out;
              out["source"] = {{"file", loaded->file}, {"via", loaded->via}};
              out["warnings"] = loaded->warnings;
              out["config"] = nlohmann::ordered_json::parse(config::ToJson(loaded->config));
              std::cout << out.dump(2) << "\n";
            } else {
              std::cout << "# runvm " << kVersion << " effective configuration\n"
                        << "# loaded from " << loaded->file << " (" << loaded->via << ")\n";
              for (const std::string& w : loaded->warnings) std::cout << "# warning: " << w << "\n";
              std::cout << "\n" << config::ToToml(loaded->config);
            }
            return 0;
          }};
}

}  // namespace runvm
