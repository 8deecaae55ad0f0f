#include "bench/bare_guest.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "base/fd.h"
#include "base/process.h"
#include "hypervisor/qemu/command_line.h"

namespace runvm::bench {
namespace {

[[noreturn]] void Die(const absl::Status& st) {
  std::fprintf(stderr, "bare guest: %s\n", std::string(st.message()).c_str());
  std::exit(1);
}

}  // namespace

double BareGuestMs(const config::QemuConfig& cfg, const std::string& memory,
                   const std::string& agent_socket) {
  config::QemuConfig bare = cfg;
  bare.shared_fs = "none";
  absl::Time t0 = absl::Now();
  auto out = MakePipe();
  if (!out.ok()) Die(out.status());
  SpawnOptions o{.argv = {cfg.path,
                          "-machine",
                          "q35,accel=tcg",
                          "-cpu",
                          "max",
                          "-m",
                          memory,
                          "-kernel",
                          cfg.kernel,
                          "-initrd",
                          cfg.initrd,
                          "-append",
                          qemu::KernelCommandLine(bare),
                          "-nodefaults",
                          "-display",
                          "none",
                          "-no-reboot",
                          "-serial",
                          "stdio",
                          "-device",
                          "virtio-serial-pci,id=serial0",
                          "-chardev",
                          "socket,id=agent,path=" + agent_socket + ",server=on,wait=off",
                          "-device",
                          "virtserialport,bus=serial0.0,chardev=agent,name=agent.0"}};
  o.fds[1] = out->write.get();
  auto child = Spawn(o);
  if (!child.ok()) Die(child.status());
  out->write.reset();
  std::string seen;
  char buf[4096];
  while (!absl::StrContains(seen, "RUNVM-GUEST-READY")) {
    ssize_t n = ::read(out->read.get(), buf, sizeof buf);
    if (n <= 0) Die(absl::InternalError("the bare guest printed no marker"));
    seen.append(buf, static_cast<size_t>(n));
  }
  return absl::ToDoubleMilliseconds(absl::Now() - t0);
}  // the bare QEMU is killed and reaped by its Child

}  // namespace runvm::bench
