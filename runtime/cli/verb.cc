#include "runtime/cli/verb.h"

#include <cstdlib>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace runvm {

Verb IdVerb(std::string name, std::string help, std::function<int(const std::string& id)> run) {
  auto id = std::make_shared<std::string>();
  return {.name = std::move(name),
          .help = std::move(help),
          .flags = {{.names = "id", .into = id.get(), .required = true}},
          .run = [id, run = std::move(run)] { return run(*id); }};
}

int Fail(absl::string_view message) {
  LogFatal(message);
  return 1;
}

int Done(const absl::Status& st) { return st.ok() ? 0 : Fail(st.message()); }

absl::StatusOr<LoadedConfig> LoadConfig(const GlobalFlags& g) {
  const char* env = std::getenv("RUNVM_CONFIG");
  absl::StatusOr<LoadedConfig> loaded =
      LoadEffectiveConfig({.flag = g.config, .env = env ? env : ""}, HostFactsNow());
  if (loaded.ok()) {
    for (const std::string& w : loaded->warnings) LogWarning(w);
  }
  return loaded;
}

Containers MakeContainers(const GlobalFlags& g) {
  ContainersOptions o{.root = g.root, .load_config = [g] { return LoadConfig(g); }};
  o.systemd_cgroup = g.systemd_cgroup;
  // The shim runs this binary by its real path, so that it shows as runvm in ps.
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) o.self_exe = self.string();
  if (!g.log.empty()) o.shim_flags = {"--log", g.log, "--log-format", g.log_format};
  if (g.debug) o.shim_flags.push_back("--debug");
  o.shim_flags.insert(o.shim_flags.begin(), {"--root", g.root});
  if (g.systemd_cgroup) o.shim_flags.push_back("--systemd-cgroup");
  return Containers(std::move(o));
}

absl::Status RefuseHostOnlyFlags(int preserve_fds, const std::string& process_label,
                                 const std::string& apparmor) {
  if (preserve_fds < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--preserve-fds ", preserve_fds, ": negative"));
  }
  if (preserve_fds > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--preserve-fds ", preserve_fds,
                     ": the process runs in a VM, where the host's file descriptors cannot go"));
  }
  if (!process_label.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--process-label ", process_label, ": the guest has no SELinux policy to apply it"));
  }
  if (!apparmor.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--apparmor ", apparmor, ": the guest has no AppArmor to apply it"));
  }
  return absl::OkStatus();
}

}  // namespace runvm
