// libFuzzer target for configuration.toml and the annotations applied over it: the input is a
// TOML text, optionally followed by "\n---\n" and one `key=value` annotation per line. Nothing
// may crash, hang or throw; a configuration that loads is valid, and stays valid once every
// annotation the rules allow is applied (or the annotations are refused).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

#include "absl/strings/str_split.h"
#include "runtime/config/annotations.h"
#include "runtime/config/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find("\n---\n");
  const std::string toml = input.substr(0, split);
  std::map<std::string, std::string> annotations;
  if (split != std::string::npos) {
    for (absl::string_view line : absl::StrSplit(input.substr(split + 5), '\n')) {
      std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
      annotations[kv.first] = kv.second;
    }
  }
  const runvm::config::HostFacts host{.cpus = 2};
  absl::StatusOr<runvm::LoadedConfig> loaded = runvm::ParseConfig(toml, "fuzz.toml", host);
  if (!loaded.ok()) return 0;
  if (!loaded->config.Validate().empty()) std::abort();
  runvm::config::Config config = loaded->config;
  if (runvm::ApplyAnnotations(annotations, host, config).ok() && !config.Validate().empty()) {
    std::abort();
  }
  return 0;
}
