#include "tests/testing/bare_qemu.h"

#include <fcntl.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unix_socket.h"

namespace runvm::testing {

absl::StatusOr<std::unique_ptr<BareQemu>> BareQemu::Start(int monitors) {
  TempDir dir;
  std::vector<Fd> listeners;
  SpawnOptions o{.argv = {kQemuBinary, "-machine", "none", "-nodefaults", "-S", "-display", "none",
                          "-no-user-config"}};
  for (int i = 0; i < monitors; ++i) {
    ASSIGN_OR_RETURN(Fd l, ListenUnix(absl::StrCat(dir.path(), "/qmp", i, ".sock")));
    int child_fd = 3 + i;
    o.fds[child_fd] = l.get();
    o.argv.push_back("-chardev");
    o.argv.push_back(absl::StrCat("socket,id=qmp", i, ",fd=", child_fd, ",server=on,wait=off"));
    o.argv.push_back("-mon");
    o.argv.push_back(absl::StrCat("chardev=qmp", i, ",mode=control"));
    listeners.push_back(std::move(l));
  }
  ASSIGN_OR_RETURN(Fd err, OpenFile(dir.path() + "/stderr", O_WRONLY | O_CREAT | O_TRUNC, 0600));
  o.fds[2] = err.get();
  ASSIGN_OR_RETURN(Child child, Spawn(o));
  return std::unique_ptr<BareQemu>(new BareQemu(std::move(dir), std::move(child)));
}

std::string BareQemu::monitor_path(int i) const {
  return absl::StrCat(dir_.path(), "/qmp", i, ".sock");
}

std::string BareQemu::stderr_text() const {
  std::ifstream in(dir_.path() + "/stderr");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace runvm::testing
