#include "tests/testing/command.h"

#include <poll.h>
#include <unistd.h>

#include "absl/time/clock.h"
#include "base/fd.h"
#include "base/process.h"

namespace runvm::testing {

CommandResult RunCommand(const std::vector<std::string>& argv, std::vector<std::string> env,
                         absl::Duration timeout, const std::string* input) {
  CommandResult r;
  env.push_back("PATH=/usr/sbin:/usr/bin:/sbin:/bin");
  auto out = MakePipe();
  auto err = MakePipe();
  auto in = MakePipe();
  if (!out.ok() || !err.ok() || !in.ok()) return r;
  SpawnOptions o{.argv = argv, .env = env};
  if (input != nullptr) o.fds[0] = in->read.get();
  o.fds[1] = out->write.get();
  o.fds[2] = err->write.get();
  auto child = Spawn(o);
  if (!child.ok()) {
    r.err = std::string(child.status().message());
    return r;
  }
  out->write.reset();
  err->write.reset();
  in->read.reset();
  if (input != nullptr) {
    // Small inputs only: the pipe takes 64 KiB before the child reads.
    (void)!::write(in->write.get(), input->data(), input->size());
  }
  in->write.reset();
  // Both pipes at once, so that neither can fill up and stall the child.
  const absl::Time deadline = absl::Now() + timeout;
  pollfd p[2] = {{out->read.get(), POLLIN, 0}, {err->read.get(), POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open = 2;
  while (open > 0 && absl::Now() < deadline) {
    if (::poll(p, 2, 200) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (p[i].fd < 0 || p[i].revents == 0) continue;
      char buf[4096];
      ssize_t n = ::read(p[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        p[i].fd = -1;
        --open;
      }
    }
  }
  auto st = child->Wait(open == 0 ? deadline + absl::Seconds(5) : absl::Now());
  if (st.ok()) r.code = st->ShellCode();
  return r;
}

}  // namespace runvm::testing
