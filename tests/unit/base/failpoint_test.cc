#include "base/failpoint.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "gtest/gtest.h"

namespace runvm {
namespace {

// Runs `body` in a forked child and returns its wait status.
int InChild(void (*body)()) {
  pid_t pid = ::fork();
  if (pid == 0) {
    body();
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

TEST(Failpoint, InertUnlessNamed) {
  int st = InChild([] {
    ::unsetenv("RUNVM_FAILPOINT");
    RUNVM_FAILPOINT("vm.start.after-qemu-spawn");
  });
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  st = InChild([] {
    ::setenv("RUNVM_FAILPOINT", "vm.stop.after-quit", 1);
    RUNVM_FAILPOINT("vm.start.after-qemu-spawn");
  });
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST(Failpoint, NamedPointKillsTheProcessThere) {
  int st = InChild([] {
    ::setenv("RUNVM_FAILPOINT", "vm.start.after-qemu-spawn", 1);
    RUNVM_FAILPOINT("vm.start.after-qemu-spawn");
    ::_exit(3);  // never reached
  });
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << st;
}

TEST(Failpoint, TheListNamesEveryPointInTheSources) {
  std::set<std::string> used;
  std::regex call(R"re(RUNVM_FAILPOINT\("([^"]+)"\))re");
  for (const char* layer :
       {"base", "proto", "persist", "devices", "hypervisor", "runtime", "agent"}) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(
             std::string(RUNVM_SOURCE_DIR) + "/" + layer)) {
      if (e.path().extension() != ".cc") continue;
      std::ifstream in(e.path());
      std::stringstream text;
      text << in.rdbuf();
      std::string s = text.str();
      for (std::sregex_iterator it(s.begin(), s.end(), call), end; it != end; ++it) {
        used.insert((*it)[1]);
      }
    }
  }
  std::set<std::string> listed(AllFailpoints().begin(), AllFailpoints().end());
  EXPECT_EQ(used, listed) << "base/failpoint.cc lists every RUNVM_FAILPOINT, and only those";
  EXPECT_FALSE(listed.empty());
}

}  // namespace
}  // namespace runvm
