#include "runtime/cli/cli.h"

#include <iostream>
#include <type_traits>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "proto/oci_spec.h"
#include "runtime/cli/verb.h"
#include "runtime/cli/version.h"

namespace runvm {
namespace {

// Every verb, in the order the help lists them.
std::vector<Verb> AllVerbs(const GlobalFlags& g) {
  std::vector<Verb> verbs;
  for (Verb (*make)(const GlobalFlags&) :
       {EnvVerb, CheckVerb, SpecVerb, SandboxVerb, CreateVerb, RunVerb, StartVerb, StateVerb,
        KillVerb, DeleteVerb, ListVerb, ExecVerb, PsVerb, PauseVerb, ResumeVerb, UpdateVerb,
        EventsVerb, ShimVerb}) {
    verbs.push_back(make(g));
  }
  return verbs;
}

void AddFlag(CLI::App& app, const Flag& flag) {
  std::visit(
      [&](auto* into) {
        using T = std::remove_pointer_t<decltype(into)>;
        CLI::Option* o;
        if constexpr (std::is_same_v<T, bool>) {
          o = app.add_flag(flag.names, *into, flag.help);
        } else {
          o = app.add_option(flag.names, *into, flag.help);
          if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            o->allow_extra_args(false);  // one value per use; repeat it for more
          }
          if (!flag.choices.empty()) o->check(CLI::IsMember(flag.choices));
          if (flag.show_default) o->capture_default_str();
        }
        if (flag.required) o->required();
      },
      flag.into);
}

// Adds `verb` (and its sub-verbs) under `parent`; remembers which App each verb became.
void AddVerb(CLI::App& parent, Verb& verb, std::vector<std::pair<CLI::App*, Verb*>>& added) {
  CLI::App* app = parent.add_subcommand(verb.name, verb.help);
  if (verb.help.empty()) app->group("");
  for (const Flag& flag : verb.flags) AddFlag(*app, flag);
  if (verb.rest != nullptr) app->prefix_command();
  if (!verb.footer.empty()) app->footer(verb.footer);
  if (!verb.verbs.empty() && !verb.run) app->require_subcommand(1);
  for (Verb& sub : verb.verbs) AddVerb(*app, sub, added);
  added.emplace_back(app, &verb);
}

// "sandbox plug disk ID" or "exec ID": the verb and its id, never the rest of the command line
// (an exec's -e values and arguments may hold secrets).
std::string Describe(const CLI::App& cli, const Verb& verb) {
  std::string out = cli.get_name();
  for (const CLI::App* p = cli.get_parent(); p != nullptr && p->get_parent() != nullptr;
       p = p->get_parent()) {
    out = p->get_name() + " " + out;
  }
  for (const Flag& flag : verb.flags) {
    if (flag.names != "id") continue;
    if (auto* id = std::get_if<std::string*>(&flag.into)) absl::StrAppend(&out, " ", **id);
  }
  if (verb.rest != nullptr && !verb.rest->empty()) absl::StrAppend(&out, " ", verb.rest->front());
  return out;
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

  std::vector<Verb> verbs = AllVerbs(g);
  std::vector<std::pair<CLI::App*, Verb*>> added;
  for (Verb& verb : verbs) AddVerb(app, verb, added);

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

  // The innermost verb given runs (sub-verbs were added before their parents).
  for (auto& [cli, verb] : added) {
    if (!cli->parsed() || !verb->run) continue;
    if (verb->rest != nullptr) *verb->rest = cli->remaining();
    LogDebug(absl::StrCat("runvm ", Describe(*cli, *verb)));
    return verb->run();
  }
  return Fail("no command given");
}

}  // namespace runvm
