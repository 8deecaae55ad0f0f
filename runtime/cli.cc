#include "runtime/cli.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "nlohmann/json.hpp"
#include "proto/config_codec.h"
#include "runtime/config_loader.h"
#include "runtime/host_check.h"
#include "runtime/version.h"

namespace runvm {
namespace {

struct GlobalFlags {
  std::string root = "/run/runvm";
  std::string log;
  std::string log_format = "text";
  bool debug = false;
  bool systemd_cgroup = false;
  std::string config;
};

absl::StatusOr<LoadedConfig> Load(const GlobalFlags& g) {
  const char* env = std::getenv("RUNVM_CONFIG");
  absl::StatusOr<LoadedConfig> loaded =
      LoadEffectiveConfig({.flag = g.config, .env = env ? env : ""}, HostFactsNow());
  if (loaded.ok()) {
    for (const std::string& w : loaded->warnings) LogWarning(w);
  }
  return loaded;
}

int Fail(absl::string_view message) {
  LogFatal(message);
  return 1;
}

int RunEnv(const GlobalFlags& g, bool json) {
  absl::StatusOr<LoadedConfig> loaded = Load(g);
  if (!loaded.ok()) return Fail(loaded.status().message());
  if (json) {
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
}

int RunCheck(const GlobalFlags& g, bool verbose, bool boot) {
  absl::StatusOr<LoadedConfig> loaded = Load(g);
  if (!loaded.ok()) return Fail(loaded.status().message());
  std::vector<CheckResult> results =
      CheckHost(*loaded, HostPaths{}, CheckOptions{.boot = boot, .socket_base = g.root + "/vm"});
  std::string text;
  bool pass = RenderCheck(results, &text);
  if (verbose) {
    for (const std::string& w : loaded->warnings) text += "warning: " + w + "\n";
  }
  std::cout << text;
  if (!pass) {
    std::string reasons;
    for (const CheckResult& r : results) {
      if (r.level == CheckLevel::kFail)
        absl::StrAppend(&reasons, reasons.empty() ? "" : "; ", r.name, ": ", r.detail);
    }
    return Fail(absl::StrCat("host check failed: ", reasons));
  }
  return 0;
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app{"runvm: an OCI runtime that runs every pod in its own QEMU virtual machine",
               "runvm"};
  app.require_subcommand(1);
  GlobalFlags g;
  app.add_option("--root", g.root, "root directory for container state")->capture_default_str();
  app.add_option("--log", g.log, "append log messages to this file (default: stderr)");
  app.add_option("--log-format", g.log_format, "log format: text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_flag("--debug", g.debug, "log debug messages");
  app.add_flag("--systemd-cgroup", g.systemd_cgroup,
               "cgroupsPath is slice:prefix:name for systemd");
  app.add_option("--config", g.config,
                 "configuration.toml (default: $RUNVM_CONFIG, /etc/runvm/configuration.toml, "
                 "then the packaged default)");
  app.set_version_flag("-v,--version",
                       absl::StrCat("runvm version ", kVersion, "\nspec: ", kOciSpecVersion));

  bool env_json = false;
  CLI::App* env = app.add_subcommand("env", "print the effective configuration");
  env->add_flag("--json", env_json, "as JSON instead of TOML");
  bool check_verbose = false;
  CLI::App* check = app.add_subcommand("check", "check that this host can run sandboxes");
  check->add_flag("--verbose", check_verbose, "also list configuration warnings");
  bool check_boot = false;
  check->add_flag("--boot", check_boot,
                  "also boot a throwaway sandbox VM and wait for its guest (a few seconds)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "runvm: " << e.what() << "\n";
    return 1;
  }

  absl::StatusOr<LogFormat> format = ParseLogFormat(g.log_format);
  absl::Status st = InitLogging(
      {.file = g.log, .format = format.ok() ? *format : LogFormat::kText, .debug = g.debug});
  if (!st.ok()) return Fail(absl::StrCat("--log: ", st.message()));

  if (env->parsed()) return RunEnv(g, env_json);
  if (check->parsed()) return RunCheck(g, check_verbose, check_boot);
  return Fail("no command given");
}

}  // namespace runvm
