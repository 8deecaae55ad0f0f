#include "hypervisor/qemu/accel_probe.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/deadline.h"
#include "base/fd.h"
#include "base/process.h"

namespace runvm::qemu {
namespace {

constexpr absl::string_view kMarker = "Linux version";

// Reads `fd` until `marker` shows up, EOF, or `deadline`. Returns what was read.
std::string ReadUntil(int fd, absl::string_view marker, absl::Time deadline, bool* found) {
  std::string seen;
  *found = false;
  for (;;) {
    int ms = PollTimeoutMs(deadline);
    if (ms == 0) return seen;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return seen;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return seen;
    seen.append(buf, static_cast<size_t>(n));
    if (absl::StrContains(seen, marker)) {
      *found = true;
      return seen;
    }
    if (seen.size() > (1 << 20)) seen.erase(0, seen.size() - 4096);
  }
}

}  // namespace

std::vector<std::string> ProbeArgv(const AccelProbeInput& in) {
  return {in.qemu,
          "-machine",
          "q35,accel=kvm",
          "-cpu",
          "host",
          "-m",
          "256",
          "-smp",
          "1",
          "-no-user-config",
          "-nodefaults",
          "-display",
          "none",
          "-serial",
          "stdio",
          "-no-reboot",
          "-kernel",
          in.kernel,
          "-append",
          "console=ttyS0 earlyprintk=ttyS0 panic=-1 quiet loglevel=0"};
}

AccelProbe ProbeKvm(const AccelProbeInput& in) {
  AccelProbe out;
  absl::Time start = absl::Now();
  auto finish = [&](bool usable, std::string reason) {
    out.kvm_usable = usable;
    out.reason = std::move(reason);
    out.took = absl::Now() - start;
    return out;
  };

  absl::StatusOr<Fd> kvm = OpenFile(in.kvm_device, O_RDWR);
  if (!kvm.ok()) return finish(false, std::string(kvm.status().message()));
  int api = ::ioctl(kvm->get(), KVM_GET_API_VERSION, 0);
  if (api != KVM_API_VERSION) {
    return finish(false, absl::StrCat(in.kvm_device, ": KVM API version ", api, ", expected ",
                                      KVM_API_VERSION));
  }
  kvm->reset();
  if (::access(in.kernel.c_str(), R_OK) != 0) {
    return finish(false,
                  absl::StrCat("kernel ", in.kernel, " is not readable: ", std::strerror(errno)));
  }

  absl::StatusOr<Pipe> pipe = MakePipe();
  if (!pipe.ok()) return finish(false, std::string(pipe.status().message()));
  SpawnOptions opts{.argv = ProbeArgv(in)};
  opts.fds[1] = pipe->write.get();
  opts.fds[2] = pipe->write.get();
  absl::StatusOr<Child> child = Spawn(opts);
  if (!child.ok()) return finish(false, std::string(child.status().message()));
  pipe->write.reset();

  bool found = false;
  std::string seen = ReadUntil(pipe->read.get(), kMarker, start + in.timeout, &found);
  if (found) {
    return finish(true, absl::StrCat("a guest kernel printed its banner under KVM in ",
                                     absl::FormatDuration(absl::Now() - start)));
  }
  // EOF means QEMU closed its output, normally by exiting: give it a moment to become
  // reapable. At the deadline it is still running, and Child's destructor kills and reaps it.
  bool eof = absl::Now() < start + in.timeout;
  absl::StatusOr<ExitStatus> exit = child->Wait(eof ? absl::Now() + absl::Seconds(2) : absl::Now());
  if (exit.ok()) {
    size_t nl = seen.find_last_not_of("\r\n");
    std::string tail = nl == std::string::npos ? "" : seen.substr(0, nl + 1);
    if (tail.size() > 300) tail = "..." + tail.substr(tail.size() - 300);
    return finish(false, absl::StrCat("QEMU exited with status ", exit->ShellCode(),
                                      " under KVM before the guest kernel printed: ", tail));
  }
  return finish(false, absl::StrCat("a guest kernel printed nothing under KVM within ",
                                    absl::FormatDuration(in.timeout),
                                    " (KVM accepts VMs but does not run this guest)"));
}

}  // namespace runvm::qemu
