#include "runtime/cli/cli.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/process.h"
#include "base/status.h"
#include "nlohmann/json.hpp"
#include "proto/config_codec.h"
#include "proto/oci_spec.h"
#include "runtime/cli/ps_table.h"
#include "runtime/cli/sandbox.h"
#include "runtime/cli/version.h"
#include "runtime/config/loader.h"
#include "runtime/host/check.h"
#include "runtime/oci/containers.h"
#include "runtime/oci/shim.h"

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
      CheckHost(*loaded, HostPaths{}, CheckOptions{.boot = boot, .socket_base = g.root + "/.vm"});
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

// runc's `spec`: refuses to overwrite, writes config.json with a trailing newline.
int RunSpec(const std::string& bundle) {
  const std::string path = bundle + "/config.json";
  if (::access(path.c_str(), F_OK) == 0) {
    return Fail(absl::StrCat("File ", path, " exists. Remove it first"));
  }
  absl::Status st = WriteFileAtomic(path, oci::SpecToJson(oci::DefaultSpec()) + "\n", 0644);
  if (!st.ok()) return Fail(st.message());
  return 0;
}

// The OCI verbs' arguments, as runc spells them.
struct OciCommand {
  std::string id;
  std::string bundle = ".";
  std::string pid_file;
  std::string console_socket;
  bool detach = false;
  bool force = false;
  bool all = false;
  std::string signal = "TERM";
  std::string format = "table";
  bool quiet = false;
  int preserve_fds = 0;
  std::string process_label;
  std::string apparmor;
  // exec
  ExecRequest exec;
  std::string process_file;
  std::vector<std::string> rest;  // exec: the id, then the command; ps: ps(1)'s options
  // update
  std::string resources_file;
  std::map<std::string, std::string> update_flags;  // flag name -> value as given
  // events
  bool stats = false;
  std::string interval = "5s";
  // shim
  std::string port;
  int ready_fd = -1;
};

// runc's sizes: "256m", "1G", "1024", "-1" (no limit); binary multiples.
absl::StatusOr<int64_t> ParseBytes(const std::string& flag, const std::string& text) {
  std::string t = absl::AsciiStrToLower(text);
  if (t == "-1") return -1;
  if (absl::EndsWith(t, "b")) t.pop_back();
  int shift = 0;
  if (!t.empty()) {
    const size_t unit = std::string("kmgtp").find(t.back());
    if (unit != std::string::npos) {
      shift = 10 * static_cast<int>(unit + 1);
      t.pop_back();
    }
  }
  int64_t n = 0;
  if (!absl::SimpleAtoi(t, &n) || n < 0 || (shift > 0 && n > (INT64_MAX >> shift))) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " \"", text, "\": not a size (1024, 512k, 256m, 2g or -1)"));
  }
  return n << shift;
}

absl::StatusOr<int64_t> ParseInt(const std::string& flag, const std::string& text) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(text, &n)) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, " \"", text, "\": not a number"));
  }
  return n;
}

// update's resources: the --resources JSON (a file, or stdin for "-") with runc's flags over it.
absl::StatusOr<oci::Resources> UpdateResources(const OciCommand& c) {
  oci::Resources r;
  if (!c.resources_file.empty()) {
    std::string text;
    if (c.resources_file == "-") {
      ASSIGN_OR_RETURN(text, ReadToEnd(0, 1 << 20, absl::Now() + absl::Seconds(30)));
    } else {
      absl::StatusOr<std::string> read = ReadFile(c.resources_file, 1 << 20);
      if (!read.ok()) return Annotate(read.status(), "--resources");
      text = *read;
    }
    absl::StatusOr<oci::Resources> parsed = oci::ParseResources(text);
    if (!parsed.ok()) return Annotate(parsed.status(), "--resources");
    r = *std::move(parsed);
  }
  auto flag = [&](const char* name) -> const std::string& { return c.update_flags.at(name); };
  for (const char* name : {"blkio-weight", "cpu-rt-period", "cpu-rt-runtime", "kernel-memory",
                           "kernel-memory-tcp", "l3-cache-schema", "mem-bw-schema"}) {
    if (!flag(name).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, ": not supported (the guest has no such controller)"));
    }
  }
  auto cpu = [&]() -> oci::CpuResources& { return r.cpu ? *r.cpu : r.cpu.emplace(); };
  auto memory = [&]() -> oci::MemoryResources& {
    return r.memory ? *r.memory : r.memory.emplace();
  };
  if (!flag("cpu-period").empty()) {
    ASSIGN_OR_RETURN(int64_t v, ParseInt("cpu-period", flag("cpu-period")));
    cpu().period = static_cast<uint64_t>(std::max<int64_t>(v, 0));
  }
  if (!flag("cpu-quota").empty()) {
    ASSIGN_OR_RETURN(cpu().quota, ParseInt("cpu-quota", flag("cpu-quota")));
  }
  if (!flag("cpu-share").empty()) {
    ASSIGN_OR_RETURN(int64_t v, ParseInt("cpu-share", flag("cpu-share")));
    cpu().shares = static_cast<uint64_t>(std::max<int64_t>(v, 0));
  }
  if (!flag("cpuset-cpus").empty()) cpu().cpus = flag("cpuset-cpus");
  if (!flag("cpuset-mems").empty()) cpu().mems = flag("cpuset-mems");
  if (!flag("memory").empty()) {
    ASSIGN_OR_RETURN(memory().limit, ParseBytes("memory", flag("memory")));
  }
  if (!flag("memory-reservation").empty()) {
    ASSIGN_OR_RETURN(memory().reservation,
                     ParseBytes("memory-reservation", flag("memory-reservation")));
  }
  if (!flag("memory-swap").empty()) {
    ASSIGN_OR_RETURN(memory().swap, ParseBytes("memory-swap", flag("memory-swap")));
  }
  if (!flag("pids-limit").empty()) {
    ASSIGN_OR_RETURN(int64_t v, ParseInt("pids-limit", flag("pids-limit")));
    r.pids = oci::PidsResources{v};
  }
  RETURN_IF_ERROR(r.Validate());
  return r;
}

// runc's stats event: {"type":"stats","id":...,"data":{"cpu":...,"memory":...,"pids":...}},
// with cpu times in nanoseconds and "max" as the largest unsigned 64-bit number.
nlohmann::ordered_json StatsEvent(const std::string& id, const agent_proto::CgroupStats& st) {
  using J = nlohmann::ordered_json;
  auto limit = [](int64_t v) -> J {
    return v < 0 ? J(std::numeric_limits<uint64_t>::max()) : J(v);
  };
  J data;
  data["cpu"] = {{"usage",
                  {{"total", st.cpu_usage_usec * 1000},
                   {"kernel", st.cpu_system_usec * 1000},
                   {"user", st.cpu_user_usec * 1000}}},
                 {"throttling",
                  {{"periods", st.cpu_periods},
                   {"throttledPeriods", st.cpu_throttled_periods},
                   {"throttledTime", st.cpu_throttled_usec * 1000}}}};
  data["memory"] = {{"usage",
                     {{"limit", limit(st.memory_max)},
                      {"usage", st.memory_current},
                      {"max", st.memory_peak},
                      {"failcnt", st.oom}}},
                    {"swap", {{"limit", limit(st.swap_max)}, {"usage", st.swap_current}}},
                    {"raw", st.memory_stat}};
  data["pids"] = {{"current", st.pids_current}, {"limit", st.pids_max < 0 ? 0 : st.pids_max}};
  data["blkio"] = J::object();
  data["hugetlb"] = J::object();
  return {{"type", "stats"}, {"id", id}, {"data", std::move(data)}};
}

// runc events: with --stats one stats line; otherwise a stats line every interval and an oom
// line whenever the container's OOM kill count grows, until the container stops.
int RunEvents(Containers& containers, const OciCommand& c) {
  absl::Duration interval;
  if (!absl::ParseDuration(c.interval, &interval) || interval <= absl::ZeroDuration()) {
    return Fail(absl::StrCat("--interval \"", c.interval, "\": not a duration (5s, 500ms)"));
  }
  int64_t ooms = -1;
  auto report_ooms = [&](const agent_proto::CgroupStats& st) {
    if (ooms >= 0 && st.oom_kill > ooms) {
      std::cout << nlohmann::ordered_json{{"type", "oom"}, {"id", c.id}}.dump() << std::endl;
    }
    ooms = st.oom_kill;
  };
  for (;;) {
    absl::StatusOr<agent_proto::CgroupStats> st = containers.Stats(c.id);
    if (!st.ok()) {
      // The stream ends with the container, after an oom line if the memory limit killed it
      // (its last figures are still in the guest until it is deleted).
      if (!c.stats && ooms >= 0 && absl::IsFailedPrecondition(st.status())) {
        absl::StatusOr<agent_proto::CgroupStats> last = containers.Stats(c.id, /*after_exit=*/true);
        if (last.ok()) report_ooms(*last);
        return 0;
      }
      return Fail(st.status().message());
    }
    report_ooms(*st);
    std::cout << StatsEvent(c.id, *st).dump() << std::endl;
    if (c.stats) return 0;
    // Waits for the interval, looking every 100 ms whether the container has ended, so that the
    // stream ends (and an OOM kill shows) with it rather than an interval later.
    const absl::Time next = absl::Now() + interval;
    while (absl::Now() < next) {
      absl::SleepFor(std::min(absl::Milliseconds(100), next - absl::Now()));
      absl::StatusOr<OciState> state = containers.State(c.id);
      if (!state.ok() || state->status == "stopped") break;
    }
  }
}

Containers MakeContainers(const GlobalFlags& g) {
  ContainersOptions o{.root = g.root, .load_config = [g] { return Load(g); }};
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

// Flags that ask for something a process in a VM cannot have: refused, never ignored.
absl::Status RefuseHostOnlyFlags(const OciCommand& c) {
  if (c.preserve_fds < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--preserve-fds ", c.preserve_fds, ": negative"));
  }
  if (c.preserve_fds > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--preserve-fds ", c.preserve_fds,
                     ": the process runs in a VM, where the host's file descriptors cannot go"));
  }
  if (!c.process_label.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--process-label ", c.process_label, ": the guest has no SELinux policy to apply it"));
  }
  if (!c.apparmor.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--apparmor ", c.apparmor, ": the guest has no AppArmor to apply it"));
  }
  return absl::OkStatus();
}

// runc exits 255 when exec itself fails (as opposed to the process's own status).
constexpr int kExecFailed = 255;

int RunOci(const GlobalFlags& g, const std::string& verb, const OciCommand& c) {
  Containers containers = MakeContainers(g);
  auto done = [](const absl::Status& st) { return st.ok() ? 0 : Fail(st.message()); };
  if (verb == "create" || verb == "run") {
    if (absl::Status st = RefuseHostOnlyFlags(c); !st.ok()) return Fail(st.message());
    const bool foreground = verb == "run" && !c.detach;
    absl::StatusOr<Child> shim = containers.Create({.id = c.id,
                                                    .bundle = c.bundle,
                                                    .pid_file = c.pid_file,
                                                    .console_socket = c.console_socket,
                                                    .detach = !foreground});
    if (!shim.ok()) return Fail(shim.status().message());
    LogDebug(absl::StrCat(verb, " ", c.id, ": created, shim ", shim->pid()));
    if (verb == "create") {
      shim->Release();
      return 0;
    }
    // From here on the shim passes on what it is sent; run does from its wait on (they queue).
    const sigset_t forwarded = ForwardedSignals();
    if (foreground) ::sigprocmask(SIG_BLOCK, &forwarded, nullptr);
    if (absl::Status st = containers.Start(c.id); !st.ok()) {
      (void)containers.Delete(c.id, /*force=*/true);
      return Fail(st.message());
    }
    if (!foreground) {
      shim->Release();
      return 0;
    }
    // runc run: wait for the workload (passing on signals), remove the container, exit with
    // the workload's status.
    absl::StatusOr<ExitStatus> exit = WaitPassingSignals(*shim);
    absl::Status removed = containers.Delete(c.id, /*force=*/true);
    if (!exit.ok()) return Fail(exit.status().message());
    if (!removed.ok()) LogError(removed.message());
    return exit->ShellCode() & 0xff;
  }
  if (verb == "exec") {
    auto fail = [](absl::string_view message) {
      (void)Fail(message);
      return kExecFailed;
    };
    if (absl::Status st = RefuseHostOnlyFlags(c); !st.ok()) return fail(st.message());
    ExecRequest req = c.exec;
    if (c.rest.empty()) return fail("exec: the container id is missing");
    req.id = c.rest.front();
    req.args.assign(c.rest.begin() + 1, c.rest.end());
    req.pid_file = c.pid_file;
    req.console_socket = c.console_socket;
    req.detach = c.detach;
    if (!c.process_file.empty()) {
      absl::StatusOr<std::string> text = ReadFile(c.process_file);
      if (!text.ok()) return fail(absl::StrCat("--process: ", text.status().message()));
      req.process_json = *text;
    }
    absl::StatusOr<Child> shim = containers.Exec(req);
    if (!shim.ok()) return fail(shim.status().message());
    LogDebug(absl::StrCat("exec in ", req.id, ": shim ", shim->pid()));
    if (c.detach) {
      shim->Release();
      return 0;
    }
    absl::StatusOr<ExitStatus> exit = WaitPassingSignals(*shim);
    if (!exit.ok()) return fail(exit.status().message());
    return exit->ShellCode() & 0xff;
  }
  if (verb == "start") return done(containers.Start(c.id));
  if (verb == "kill") return done(containers.Kill(c.id, c.signal, c.all));
  if (verb == "delete") return done(containers.Delete(c.id, c.force));
  if (verb == "state") {
    absl::StatusOr<OciState> state = containers.State(c.id);
    if (!state.ok()) return Fail(state.status().message());
    std::cout << OciStateJson(*state) << "\n";
    return 0;
  }
  if (verb == "list") {
    absl::StatusOr<std::vector<OciState>> all = containers.List();
    if (!all.ok()) return Fail(all.status().message());
    if (c.quiet) {
      for (const OciState& st : *all) std::cout << st.id << "\n";
    } else if (c.format == "json") {
      nlohmann::ordered_json out = nlohmann::ordered_json::array();
      for (const OciState& st : *all) out.push_back(OciStateToJson(st));
      std::cout << out.dump() << "\n";
    } else {
      std::string text = absl::StrFormat("%-12s   %-8s   %-10s   %-30s   %-30s   %s\n", "ID", "PID",
                                         "STATUS", "BUNDLE", "CREATED", "OWNER");
      for (const OciState& st : *all) {
        absl::StrAppend(&text, absl::StrFormat("%-12s   %-8d   %-10s   %-30s   %-30s   %s\n", st.id,
                                               st.pid, st.status, st.bundle, st.created,
                                               st.owner.empty() ? "root" : st.owner));
      }
      std::cout << text;
    }
    return 0;
  }
  if (verb == "ps") {
    absl::StatusOr<std::vector<agent_proto::ProcessEntry>> ps = containers.Processes(c.id);
    if (!ps.ok()) return Fail(ps.status().message());
    if (c.format == "json") {
      nlohmann::json pids = nlohmann::json::array();  // runc's: the pids, nothing else
      for (const agent_proto::ProcessEntry& p : *ps) pids.push_back(p.pid);
      std::cout << pids.dump() << "\n";
    } else {
      absl::StatusOr<std::string> table = RenderPs(*ps, c.rest, absl::Now());
      if (!table.ok()) return Fail(table.status().message());
      std::cout << *table;
    }
    return 0;
  }
  if (verb == "pause") return done(containers.Pause(c.id));
  if (verb == "resume") return done(containers.Resume(c.id));
  if (verb == "update") {
    absl::StatusOr<oci::Resources> r = UpdateResources(c);
    if (!r.ok()) return Fail(r.status().message());
    return done(containers.Update(c.id, *r));
  }
  if (verb == "events") return RunEvents(containers, c);
  if (verb == "shim") {
    return RunShim({.id = c.id,
                    .port_socket = c.port,
                    .ready_fd = c.ready_fd,
                    .console_socket = c.console_socket});
  }
  return Fail(absl::StrCat("unknown command ", verb));
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

  std::string spec_bundle = ".";
  CLI::App* spec = app.add_subcommand("spec", "write a default config.json, as runc does");
  spec->add_option("-b,--bundle", spec_bundle, "the bundle directory to write it in");
  bool spec_rootless = false;
  spec->add_flag("--rootless", spec_rootless, "accepted for runc's sake; ignored");

  SandboxCommand sc;
  CLI::App* sandbox = app.add_subcommand("sandbox", "operate sandbox VMs directly");
  sandbox->require_subcommand(1);
  CLI::App* sb_create = sandbox->add_subcommand("create", "boot a sandbox VM");
  sb_create->add_option("id", sc.id, "sandbox id")->required();
  bool no_wait = false;
  sb_create->add_flag("--no-wait", no_wait, "return once QEMU runs, without waiting for the guest");
  CLI::App* sb_plug = sandbox->add_subcommand("plug", "hot-plug a device into a running sandbox");
  sb_plug->require_subcommand(1);
  CLI::App* plug_disk = sb_plug->add_subcommand("disk", "a disk image or block device");
  plug_disk->add_option("id", sc.id, "sandbox id")->required();
  plug_disk->add_option("path", sc.path, "file or block device")->required();
  plug_disk->add_flag("--read-only", sc.read_only, "read-only to the guest");
  plug_disk->add_option("--driver", sc.driver,
                        "virtio-blk, virtio-scsi, nvdimm or vhost-user-blk (default: "
                        "block_device_driver)");
  CLI::App* plug_nic = sb_plug->add_subcommand("nic", "a virtio-net NIC on a new tap device");
  plug_nic->add_option("id", sc.id, "sandbox id")->required();
  plug_nic->add_option("--tap", sc.tap, "name of the tap to create")->required();
  plug_nic->add_option("--mac", sc.mac, "the guest NIC's MAC")->required();
  plug_nic->add_option("--netns", sc.netns, "network namespace path (default: runvm's own)");
  plug_nic->add_option("--queues", sc.queues, "queues (default: one per boot vCPU)");
  CLI::App* plug_vfio = sb_plug->add_subcommand("vfio", "a host PCI device or mdev, whole group");
  plug_vfio->add_option("id", sc.id, "sandbox id")->required();
  plug_vfio->add_option("device", sc.path, "BDF, short BDF, mdev UUID or /dev/vfio/N")->required();
  CLI::App* plug_cpus = sb_plug->add_subcommand("cpus", "more vCPUs");
  plug_cpus->add_option("id", sc.id, "sandbox id")->required();
  plug_cpus->add_option("count", sc.amount, "how many")->required();
  CLI::App* plug_memory = sb_plug->add_subcommand("memory", "more guest memory");
  plug_memory->add_option("id", sc.id, "sandbox id")->required();
  plug_memory->add_option("mib", sc.amount, "MiB (rounded up to the memory block size)")
      ->required();
  CLI::App* sb_unplug = sandbox->add_subcommand("unplug", "unplug a hot-plugged device");
  sb_unplug->add_option("id", sc.id, "sandbox id")->required();
  sb_unplug->add_option("device", sc.device, "device id, as plug printed it")->required();
  CLI::App* sb_stop = sandbox->add_subcommand("stop", "stop the VM; the record stays");
  sb_stop->add_option("id", sc.id, "sandbox id")->required();
  CLI::App* sb_delete = sandbox->add_subcommand("delete", "stop the VM and remove the sandbox");
  sb_delete->add_option("id", sc.id, "sandbox id")->required();
  sb_delete->add_flag("-f,--force", sc.force, "also a running one; an unknown id is no error");
  CLI::App* sb_state = sandbox->add_subcommand("state", "the sandbox's state as JSON");
  sb_state->add_option("id", sc.id, "sandbox id")->required();
  CLI::App* sb_list = sandbox->add_subcommand("list", "every sandbox");
  sb_list->add_option("--format", sc.format, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();

  // The OCI verbs, with runc's flags (those runvm has no use for are accepted and ignored).
  OciCommand oc;
  std::vector<CLI::App*> oci_verbs;
  auto verb = [&](const char* name, const char* help) {
    CLI::App* v = app.add_subcommand(name, help);
    oci_verbs.push_back(v);
    return v;
  };
  auto with_create_flags = [&](CLI::App* v) {
    v->add_option("-b,--bundle", oc.bundle, "the bundle directory (default: .)");
    v->add_option("--pid-file", oc.pid_file, "write the container's pid (the shim's) here");
    v->add_option("--console-socket", oc.console_socket,
                  "a unix socket to send the terminal's master to");
    v->add_flag("--no-pivot")->description("accepted for runc's sake; ignored");
    v->add_flag("--no-new-keyring")->description("accepted for runc's sake; ignored");
    v->add_option("--preserve-fds", oc.preserve_fds, "not supported: must be 0");
    v->add_option("id", oc.id, "container id")->required();
  };
  with_create_flags(verb("create", "create a container (its VM boots; the process waits)"));
  CLI::App* run = verb("run", "create and start a container; wait for it unless --detach");
  run->add_flag("-d,--detach", oc.detach, "return once it runs");
  with_create_flags(run);
  verb("start", "start a created container")->add_option("id", oc.id)->required();
  verb("state", "print a container's state as JSON")->add_option("id", oc.id)->required();
  CLI::App* kill = verb("kill", "send a signal to a container's init (default TERM)");
  kill->add_flag("-a,--all", oc.all, "to every process of the container");
  kill->add_option("id", oc.id)->required();
  kill->add_option("signal", oc.signal, "name (KILL, SIGKILL) or number");
  CLI::App* del = verb("delete", "delete a container and its VM");
  del->add_flag("-f,--force", oc.force, "kill it if it runs; an unknown id is no error");
  del->add_option("id", oc.id)->required();
  CLI::App* list = verb("list", "list the containers");
  list->add_option("-f,--format", oc.format, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  list->add_flag("-q,--quiet", oc.quiet, "only the ids");
  CLI::App* exec = verb("exec", "run a further process in a running container");
  exec->add_option("-p,--process", oc.process_file, "the process as OCI JSON (engines pass this)");
  exec->add_flag("-t,--tty", oc.exec.tty, "a terminal (with --console-socket)");
  exec->add_option("--console-socket", oc.console_socket,
                   "a unix socket to send the terminal's master to");
  exec->add_flag("-d,--detach", oc.detach, "return once it runs");
  exec->add_option("--pid-file", oc.pid_file, "write the process's pid (its shim's) here");
  exec->add_option("--cwd", oc.exec.cwd, "working directory in the container");
  exec->add_option("-e,--env", oc.exec.env, "NAME=value, added to the container's")
      ->allow_extra_args(false);  // one value per -e; repeat it for more
  exec->add_option("-u,--user", oc.exec.user, "uid[:gid]");
  exec->add_option("-c,--cap", oc.exec.caps, "a capability to add, e.g. CAP_NET_ADMIN")
      ->allow_extra_args(false);  // one value per -e; repeat it for more
  exec->add_flag("--no-new-privs", oc.exec.no_new_privs, "set no_new_privileges");
  exec->add_option("-g,--additional-gids", oc.exec.additional_gids,
                   "a further group of the process (repeat it for more)")
      ->allow_extra_args(false);
  exec->add_option("--preserve-fds", oc.preserve_fds, "not supported in a VM: must be 0");
  exec->add_option("--process-label", oc.process_label, "not supported in the guest");
  exec->add_option("--apparmor", oc.apparmor, "not supported in the guest");
  // As runc: options end at the first argument, the id; what follows is the command's.
  exec->prefix_command();
  exec->footer("Usage: runvm exec [OPTIONS] ID [COMMAND [ARG...]]");
  CLI::App* ps = verb("ps", "list a container's processes (pids are the guest's)");
  ps->add_option("-f,--format", oc.format, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  // As runc: runvm's options come before the id; what follows it is ps(1)'s
  // (runtime/cli/ps_table.h).
  ps->prefix_command();
  ps->footer("Usage: runvm ps [--format table|json] ID [[--] PS-OPTIONS]");
  verb("pause", "freeze a running container (and its VM when it is alone there)")
      ->add_option("id", oc.id)
      ->required();
  verb("resume", "thaw a paused container")->add_option("id", oc.id)->required();
  CLI::App* update = verb("update", "change a container's resources (its VM grows to fit)");
  update->add_option("-r,--resources", oc.resources_file,
                     "OCI LinuxResources JSON from this file, or - for stdin");
  for (const char* flag : {"cpu-period", "cpu-quota", "cpu-share", "cpuset-cpus", "cpuset-mems",
                           "memory", "memory-reservation", "memory-swap", "pids-limit"}) {
    update->add_option(absl::StrCat("--", flag), oc.update_flags[flag])->default_str("");
  }
  for (const char* flag : {"blkio-weight", "cpu-rt-period", "cpu-rt-runtime", "kernel-memory",
                           "kernel-memory-tcp", "l3-cache-schema", "mem-bw-schema"}) {
    update->add_option(absl::StrCat("--", flag), oc.update_flags[flag])
        ->description("not supported in the guest")
        ->default_str("");
  }
  update->add_option("id", oc.id)->required();
  CLI::App* events = verb("events", "the container's stats (and oom events) as JSON lines");
  events->add_flag("--stats", oc.stats, "print the stats once and exit");
  events->add_option("--interval", oc.interval, "how often, e.g. 5s or 500ms (default 5s)");
  events->add_option("id", oc.id)->required();
  CLI::App* shim = verb("shim", "");  // started by create; hidden
  shim->group("");
  shim->add_option("--port", oc.port)->required();
  shim->add_option("--ready-fd", oc.ready_fd);
  shim->add_option("--console-socket", oc.console_socket);
  shim->add_option("id", oc.id)->required();

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
  if (spec->parsed()) return RunSpec(spec_bundle);
  for (CLI::App* v : oci_verbs) {
    if (!v->parsed()) continue;
    if (v == exec || v == ps) oc.rest = v->remaining();
    if (v == ps) {
      if (oc.rest.empty()) return Fail("ps: the container id is missing");
      oc.id = oc.rest.front();
      oc.rest.erase(oc.rest.begin());
      std::erase(oc.rest, "--");
    }
    LogDebug(absl::StrCat("runvm ", v->get_name(), " ",
                          oc.id.empty() && !oc.rest.empty() ? oc.rest.front() : oc.id));
    return RunOci(g, v->get_name(), oc);
  }
  if (sandbox->parsed()) {
    for (CLI::App* verb : sandbox->get_subcommands()) sc.verb = verb->get_name();
    for (CLI::App* kind : sb_plug->get_subcommands()) sc.kind = kind->get_name();
    sc.wait_guest = !no_wait;
    absl::Status st = RunSandboxCommand(sc, g.root, [&] { return Load(g); });
    if (!st.ok()) return Fail(st.message());
    return 0;
  }
  return Fail("no command given");
}

}  // namespace runvm
