// bench/run oci: the OCI verbs through the real binary, as an engine calls them.
//
// (a) `run` of `true` end to end (create: sandbox boot, agent hello, rootfs share, stdio port,
//     the container in the guest, the shim; start; the exit; delete), against the same guest
//     booted by a bare QEMU to its init's console marker.
// (b) `state` of a created container and `list` with it, against the binary's bare start-up
//     (`--version`), all spawned the same way. Peers measured on this kind of machine: runc
//     state 4.9 ms, crun 3.1 ms; the goal is under 2 ms.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/process.h"
#include "bench/bare_guest.h"
#include "bench/report.h"
#include "tests/testing/bundle.h"
#include "tests/testing/command.h"
#include "tests/testing/temp_dir.h"

namespace {

using namespace runvm;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "oci_bench: %s\n", what.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 3;
  const int quick_runs = argc > 2 ? std::atoi(argv[2]) : 200;
  const std::string guest = RUNVM_GUEST_DIR;
  testing::TempDir dir;
  const std::string root = dir.path() + "/root";
  const std::string config =
      dir.Write("configuration.toml", absl::StrCat("[hypervisor.qemu]\nkernel = \"", guest,
                                                   "/vmlinuz\"\ninitrd = \"", guest,
                                                   "/initrd.img\"\naccelerator = \"tcg\"\n"
                                                   "default_memory = 512\n"));
  testing::Bundle bundle = testing::MakeBusyboxBundle(dir.path() + "/bundle");
  bundle.spec.process.args = {"true"};
  bundle.Save();
  auto runvm = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {RUNVM_BINARY, "--root", root, "--config", config};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  };

  // (a) run of true, against the bare guest.
  std::vector<double> mine, floor;
  for (int i = 0; i < runs; ++i) {
    absl::Time t0 = absl::Now();
    testing::CommandResult r =
        testing::RunCommand(runvm({"run", "--bundle", bundle.path, absl::StrCat("run", i)}));
    if (r.code != 0) Die("run: " + r.err);
    mine.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    config::QemuConfig bare;
    bare.path = "/usr/bin/qemu-system-x86_64";
    bare.kernel = guest + "/vmlinuz";
    bare.initrd = guest + "/initrd.img";
    floor.push_back(bench::BareGuestMs(bare, "512M", dir.path() + "/bare-agent.sock"));
  }
  bench::Emit("oci", "run of true, end to end", bench::Median(mine), bench::Median(floor), runs);

  // (b) state and list of a created container, against the bare start-up.
  bundle.spec.process.args = {"sleep", "1000"};
  bundle.Save();
  SpawnOptions create{.argv = runvm({"create", "--bundle", bundle.path, "st"})};
  absl::StatusOr<Child> c = Spawn(create);  // stdio: /dev/null, which the shim keeps
  if (!c.ok() || !c->Wait(absl::Now() + absl::Seconds(120)).ok()) Die("create failed");
  auto time_cmd = [&](const std::vector<std::string>& argv) {
    std::vector<double> samples;
    for (int i = 0; i < quick_runs; ++i) {
      absl::Time t0 = absl::Now();
      testing::CommandResult r = testing::RunCommand(argv);
      if (r.code != 0) Die(absl::StrCat(argv[1], ": ", r.err));
      samples.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    }
    return bench::Median(samples);
  };
  const double startup = time_cmd({RUNVM_BINARY, "--version"});
  bench::Emit("oci", "state (runc 4.9 ms, crun 3.1 ms here)", time_cmd(runvm({"state", "st"})),
              startup, quick_runs);
  bench::Emit("oci", "list, one container", time_cmd(runvm({"list"})), startup, quick_runs);
  testing::RunCommand(runvm({"delete", "--force", "st"}));
  return 0;
}
