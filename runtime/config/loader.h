// Loading configuration.toml: strict parsing with positions, Kata's clamps, the lookup order,
// and the checks of the files a configuration names.
//
//   ASSIGN_OR_RETURN(LoadedConfig lc, LoadEffectiveConfig({.flag = cli.config}, HostFactsNow()));
//   for (const std::string& w : lc.warnings) LogWarning(w);
//
// Every error names file:line:column, the dotted key, the bad value and what is allowed:
//   /etc/runvm/configuration.toml:12:17: hypervisor.qemu.default_vcpus: expected an integer,
//   got a string ("two")
#ifndef RUNVM_RUNTIME_CONFIG_LOADER_H_
#define RUNVM_RUNTIME_CONFIG_LOADER_H_

#include <map>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "proto/config.h"

namespace runvm {

struct SourcePos {
  std::string file;
  int line = 0;
  int column = 0;
  std::string ToString() const;  // "file:line:column"
};

struct LoadedConfig {
  config::Config config;
  std::string file;  // what was read ("packaged:configs/configuration.toml" for the built-in)
  std::string via;   // why: "--config", "RUNVM_CONFIG", "/etc/runvm", "packaged default"
  std::map<std::string, SourcePos> positions;  // dotted key -> where its value was written
  std::vector<std::string> warnings;           // ignored Kata keys, clamps; with positions

  // "file:line:column: key: message" (without a position when the key was not written).
  std::string Describe(const std::string& key, absl::string_view message) const;
};

// Parses `text` (named `file` in messages), validates it and applies Kata's clamps.
absl::StatusOr<LoadedConfig> ParseConfig(absl::string_view text, const std::string& file,
                                         const config::HostFacts& host);

absl::StatusOr<LoadedConfig> LoadConfigFile(const std::string& path, const config::HostFacts& host);

struct ConfigLookup {
  std::string flag;  // --config
  std::string env;   // $RUNVM_CONFIG
  std::string system_path = "/etc/runvm/configuration.toml";
};

// --config, then RUNVM_CONFIG, then the system path when it exists, then the packaged default.
// A file named by the flag or the variable must exist.
absl::StatusOr<LoadedConfig> LoadEffectiveConfig(const ConfigLookup& lookup,
                                                 const config::HostFacts& host);

// The packaged default (configs/configuration.toml, compiled in).
absl::string_view PackagedConfigText();
inline constexpr char kPackagedConfigName[] = "packaged:configs/configuration.toml";

// Checks that the files the configuration names exist and can be used (kernel, initrd, image,
// firmware readable; QEMU and virtiofsd executable). One message per problem, with positions.
std::vector<std::string> CheckConfigFiles(const LoadedConfig& loaded);

// The host facts used by the clamps, read from this process's CPU affinity.
config::HostFacts HostFactsNow();

}  // namespace runvm

#endif  // RUNVM_RUNTIME_CONFIG_LOADER_H_
