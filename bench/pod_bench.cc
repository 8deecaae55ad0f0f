// bench/run pod: a pod's second container against its first.
//
// The sandbox container's create+start boots the VM; a further container's create+start in the
// running pod shares its rootfs, plugs its stdio port and starts it in the guest. The goal is
// under 5 % of the first. A second figure: the same with a CPU and memory limit, which adds a
// vCPU and a memory hotplug (Kata's sizing rule).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/process.h"
#include "bench/report.h"
#include "tests/testing/bundle.h"
#include "tests/testing/command.h"
#include "tests/testing/temp_dir.h"

namespace {

using namespace runvm;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "pod_bench: %s\n", what.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 3;
  const std::string guest = RUNVM_GUEST_DIR;
  testing::TempDir dir;
  const std::string root = dir.path() + "/root";
  const std::string config =
      dir.Write("configuration.toml", absl::StrCat("[hypervisor.qemu]\nkernel = \"", guest,
                                                   "/vmlinuz\"\ninitrd = \"", guest,
                                                   "/initrd.img\"\naccelerator = \"tcg\"\n"
                                                   "default_memory = 512\n"));
  auto runvm = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {RUNVM_BINARY, "--root", root, "--config", config};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  };
  auto bundle = [&](const std::string& id, const std::string& type, const std::string& sandbox,
                    bool limits) {
    testing::Bundle b = testing::MakeBusyboxBundle(dir.path() + "/" + id);
    b.spec.process.args = {"sleep", "100000"};
    b.spec.annotations = {{"io.kubernetes.cri.container-type", type},
                          {"io.kubernetes.cri.sandbox-id", sandbox}};
    if (limits) {
      b.spec.linux.resources =
          oci::Resources{.cpu = oci::CpuResources{.quota = 100000, .period = 100000},
                         .memory = oci::MemoryResources{.limit = 256 << 20}};
    }
    b.Save();
    return b.path;
  };
  // create (its shim keeps /dev/null as stdio and is reaped here) and start.
  auto create_start = [&](const std::string& id, const std::string& path) {
    absl::Time t0 = absl::Now();
    absl::StatusOr<Child> c = Spawn({.argv = runvm({"create", "--bundle", path, id})});
    if (!c.ok()) Die("create: " + std::string(c.status().message()));
    absl::StatusOr<ExitStatus> st = c->Wait(absl::Now() + absl::Seconds(120));
    if (!st.ok() || st->ShellCode() != 0) Die("create " + id + " failed");
    testing::CommandResult r = testing::RunCommand(runvm({"start", id}));
    if (r.code != 0) Die("start " + id + ": " + r.err);
    return absl::ToDoubleMilliseconds(absl::Now() - t0);
  };
  std::vector<double> first, second, limited;
  for (int i = 0; i < runs; ++i) {
    const std::string sb = absl::StrCat("pod", i), c1 = sb + "-c1", c2 = sb + "-c2";
    first.push_back(create_start(sb, bundle(sb, "sandbox", sb, false)));
    second.push_back(create_start(c1, bundle(c1, "container", sb, false)));
    limited.push_back(create_start(c2, bundle(c2, "container", sb, true)));
    for (const std::string& id : {c2, c1, sb}) {
      testing::RunCommand(runvm({"delete", "--force", id}));
    }
  }
  bench::Emit("pod", "second container's create+start (goal: under 5 % of the first's)",
              bench::Median(second), bench::Median(first), runs);
  bench::Emit("pod", "the same with CPU and memory limits (a vCPU and 256 MiB plugged)",
              bench::Median(limited), bench::Median(first), runs);
  return 0;
}
