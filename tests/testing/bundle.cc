#include "tests/testing/bundle.h"

#include <filesystem>

#include "base/file.h"

namespace runvm::testing {

void Bundle::Save() const { (void)WriteFileAtomic(path + "/config.json", oci::SpecToJson(spec)); }

Bundle MakeBusyboxBundle(const std::string& path) {
  namespace fs = std::filesystem;
  Bundle b{.path = path, .rootfs = path + "/rootfs", .spec = oci::DefaultSpec()};
  fs::create_directories(b.rootfs + "/bin");
  for (const char* d : {"proc", "sys", "dev", "tmp", "etc"})
    fs::create_directories(b.rootfs + "/" + d);
  fs::permissions(b.rootfs + "/tmp", fs::perms::all | fs::perms::sticky_bit);
  fs::copy_file("/bin/busybox", b.rootfs + "/bin/busybox");
  for (const char* applet :
       {"sh",  "echo", "id",    "cat",  "grep", "hostname", "touch", "mkdir", "sleep", "pwd",
        "env", "ls",   "uname", "head", "true", "false",    "stty",  "tty",   "nproc", "ps"}) {
    fs::create_symlink("busybox", b.rootfs + "/bin/" + applet);
  }
  b.spec.process.terminal = false;
  b.spec.process.env = {"PATH=/bin"};
  b.Save();
  return b;
}

}  // namespace runvm::testing
