// bench/run boot: sandbox start against bare QEMU, under TCG with the guest from guest/build.sh.
//
// (a) start to QMP ready: StartVm (run directory, sockets, QEMU, greeting, negotiation, cont)
//     against the same argv spawned by hand to its QMP greeting and negotiation (sockets
//     pre-bound the same way). QEMU sends the greeting before it has finished initialising
//     (about 24 ms here); it answers qmp_capabilities only after (about 50 ms), so the floor
//     includes the negotiation: that is when QEMU can take commands.
// (b) start to guest ready: StartVm with virtio-fs until the guest answers on the agent port,
//     against a bare QEMU with the same kernel, initrd and agent port until the guest init's
//     console marker (printed once it found the port).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/process.h"
#include "base/unix_socket.h"
#include "bench/bare_guest.h"
#include "bench/report.h"
#include "hypervisor/qemu/command_line.h"
#include "hypervisor/qemu/vm.h"
#include "hypervisor/qmp/client.h"
#include "tests/testing/guest_shell.h"
#include "tests/testing/temp_dir.h"

namespace {

using namespace runvm;

double Ms(absl::Time t0) { return absl::ToDoubleMilliseconds(absl::Now() - t0); }

[[noreturn]] void Die(const absl::Status& st) {
  std::fprintf(stderr, "boot_bench: %s\n", std::string(st.message()).c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 5;
  std::string guest = argc > 2 ? argv[2] : "/usr/local/share/runvm";
  testing::TempDir dir;
  config::Config c;
  c.hypervisor.kernel = guest + "/vmlinuz";
  c.hypervisor.initrd = guest + "/initrd.img";
  c.hypervisor.default_memory = 512;
  c.ApplyClamps({.cpus = 2});
  qemu::VmSpec spec{.config = c.hypervisor,
                    .sandbox_id = "bench",
                    .accelerator = "tcg",
                    .host_memory_mib = 4096,
                    .socket_base = dir.path() + "/vm"};
  spec.config.shared_fs = "none";

  // (a) QMP ready.
  std::vector<double> mine, floor;
  for (int i = 0; i < runs * 4; ++i) {
    absl::Time t0 = absl::Now();
    auto vm = qemu::StartVm(spec);
    if (!vm.ok()) Die(vm.status());
    mine.push_back(Ms(t0));
    (void)qemu::StopVm(*vm);

    // The floor: the same argv, same pre-bound sockets, spawned directly, to its greeting.
    std::string run = dir.path() + "/floor";
    ::mkdir(run.c_str(), 0700);
    qemu::CommandLineInputs in{.sandbox_id = "bench",
                               .uuid = "6b7b3c1e-8f5a-4c3e-9d2b-1a2b3c4d5e6f",
                               .accelerator = "tcg",
                               .host_memory_mib = 4096,
                               .run_dir = run};
    auto args = qemu::BuildCommandLine(spec.config, in);
    if (!args.ok()) Die(args.status());
    t0 = absl::Now();
    std::vector<Fd> socks;
    SpawnOptions o{.argv = *args};
    for (const char* name : {"qmp", "events", "agent", "console"}) {
      auto l = ListenUnix(absl::StrCat(run, "/", name, ".sock"));
      if (!l.ok()) Die(l.status());
      o.fds[3 + static_cast<int>(socks.size())] = l->get();
      socks.push_back(std::move(*l));
    }
    auto child = Spawn(o);
    if (!child.ok()) Die(child.status());
    // Ready for commands: the greeting and the negotiation, as the client's bytes.
    auto raw = ConnectUnix(run + "/qmp.sock");
    std::string got;
    auto read_line = [&] {
      char buf[512];
      while (got.find('\n') == std::string::npos) {
        ssize_t n = ::read(raw->get(), buf, sizeof buf);
        if (n <= 0) Die(absl::InternalError("the floor QEMU closed its monitor"));
        got.append(buf, static_cast<size_t>(n));
      }
      got.erase(0, got.find('\n') + 1);
    };
    if (!raw.ok()) Die(raw.status());
    read_line();
    std::string caps = "{\"execute\":\"qmp_capabilities\",\"id\":\"runvm-1\"}\r\n";
    if (::write(raw->get(), caps.data(), caps.size()) != static_cast<ssize_t>(caps.size())) {
      Die(absl::InternalError("floor negotiation"));
    }
    read_line();
    floor.push_back(Ms(t0));
  }  // the floor's QEMU is killed by its Child
  bench::Emit("boot", "start to QMP ready", bench::Median(mine), bench::Median(floor), runs * 4);

  // (b) Guest ready.
  mine.clear();
  floor.clear();
  spec.config.shared_fs = "virtio-fs";
  for (int i = 0; i < runs; ++i) {
    absl::Time t0 = absl::Now();
    auto vm = qemu::StartVm(spec);
    if (!vm.ok()) Die(vm.status());
    auto shell = testing::GuestShell::Connect(vm->agent_socket(), absl::Now() + absl::Seconds(60));
    if (!shell.ok()) Die(shell.status());
    mine.push_back(Ms(t0));
    (void)qemu::StopVm(*vm);

    floor.push_back(bench::BareGuestMs(spec.config, "512M", dir.path() + "/bare-agent.sock"));
  }
  bench::Emit("boot", "start to guest ready", bench::Median(mine), bench::Median(floor), runs);
  return 0;
}
