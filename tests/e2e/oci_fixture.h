// The fixture of the OCI end-to-end tests (oci_test.cc, pod_test.cc): the real runvm binary,
// driven the way engines drive runc, on busybox bundles in real sandbox VMs (QEMU with TCG, the
// built guest and its agent). The test process is a child subreaper, as containerd's and
// conmon's shims are, so that the runvm shims become its children and their exit statuses can
// be read.
#ifndef RUNVM_TESTS_E2E_OCI_FIXTURE_H_
#define RUNVM_TESTS_E2E_OCI_FIXTURE_H_

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/fd.h"
#include "base/file.h"
#include "base/process.h"
#include "base/process_identity.h"
#include "base/status.h"
#include "base/unix_socket.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/bundle.h"
#include "tests/testing/command.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace runvm::e2e {

using ::runvm::testing::Bundle;
using ::runvm::testing::CommandResult;
using ::runvm::testing::IsOk;
using ::runvm::testing::MakeBusyboxBundle;
using ::runvm::testing::TempDir;
using ::testing::HasSubstr;
using Json = nlohmann::json;

inline std::string GuestFile(const std::string& name) {
  return std::string(RUNVM_GUEST_DIR) + "/" + name;
}

// The release of the guest's kernel, from its bzImage header (the version string's offset is at
// 0x20e, relative to 0x200): what `uname -r` in the container must print.
inline std::string GuestKernelRelease() {
  absl::StatusOr<std::string> image = ReadFile(GuestFile("vmlinuz"), 64 << 20);
  if (!image.ok() || image->size() < 0x210) return "?";
  const size_t offset =
      0x200 + (static_cast<uint8_t>((*image)[0x20e]) | static_cast<uint8_t>((*image)[0x20f]) << 8);
  if (offset >= image->size()) return "?";
  std::string version = image->c_str() + offset;
  return version.substr(0, version.find(' '));
}

// A process the test reaps as a subreaper: the shim.
inline absl::StatusOr<int> WaitForExit(pid_t pid, absl::Duration timeout) {
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return absl::NotFoundError(absl::StrCat("no process ", pid));
  Child child(pid, std::move(pidfd));
  absl::StatusOr<ExitStatus> st = child.Wait(absl::Now() + timeout);
  if (!st.ok()) return st.status();
  return st->ShellCode();
}

inline std::string ReadAll(int fd) {
  std::string s;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20000) <= 0) break;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    s.append(buf, static_cast<size_t>(n));
  }
  return s;
}

// Reads `fd` until `text` arrives (or 60 s pass); returns everything read.
inline std::string ReadUntil(int fd, absl::string_view text) {
  std::string s;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!absl::StrContains(s, text) && absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    s.append(buf, static_cast<size_t>(n));
  }
  return s;
}

// Whether `fd` reaches its end (EOF) within `timeout`, whatever it carries until then: what a
// caller that reads a command's output to its end (go-runc, a shell's $(...)) waits for.
inline bool EndsWithin(int fd, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    pollfd p{fd, POLLIN, 0};
    if (ms <= 0 || ::poll(&p, 1, static_cast<int>(ms)) <= 0) return false;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) return true;
    if (n < 0 && errno != EINTR && errno != EAGAIN) return false;
  }
}

// The stdio an engine hands to `create`: the container's, as pipes the test holds the other
// ends of.
struct EngineIo {
  Fd stdin_w, stdout_r, stderr_r;
  CommandResult create;  // runvm create's own exit code (its output went to the container's fds)
};

class OciTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access(GuestFile("vmlinuz").c_str(), R_OK), 0)
        << "the guest is missing: run scripts/setup.sh (guest/build.sh)";
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    root_ = dir_.path() + "/root";
    log_ = dir_.path() + "/runvm.log";
    config_ = dir_.Write(
        "configuration.toml",
        absl::StrCat("[hypervisor.qemu]\nkernel = \"", GuestFile("vmlinuz"), "\"\ninitrd = \"",
                     GuestFile("initrd.img"), "\"\naccelerator = \"tcg\"\ndefault_memory = 512\n"));
    bundle_ = MakeBusyboxBundle(dir_.path() + "/bundle");
  }
  void TearDown() override {
    for (const std::string& id : ids_) {
      CommandResult r = Runvm({"delete", "--force", id});
      EXPECT_EQ(r.code, 0) << r.err;
      ExpectNothingLeft(id);
    }
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
  }

  // 64 hex digits, as podman, CRI-O and containerd's CRI plugin name their containers.
  std::string NewId() {
    ids_.push_back(absl::StrFormat("%016x%016x%032x", ::getpid(), ids_.size(),
                                   absl::ToUnixNanos(absl::Now())));
    return ids_.back();
  }

  // runvm with containerd's global flags (--root, --log, --log-format json) and the test's
  // configuration in the environment, as an installed runvm would find its own.
  std::vector<std::string> Argv(const std::vector<std::string>& args, bool global_flags = true) {
    std::vector<std::string> argv = {RUNVM_BINARY};
    if (global_flags)
      argv.insert(argv.end(), {"--root", root_, "--log", log_, "--log-format", "json"});
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  CommandResult Runvm(const std::vector<std::string>& args, const std::string* input = nullptr,
                      bool global_flags = true) {
    return ::runvm::testing::RunCommand(Argv(args, global_flags), {"RUNVM_CONFIG=" + config_},
                                        absl::Seconds(120), input);
  }

  // `create` (or `run -d`) as an engine runs it: fds 0-2 are the container's stdio; the call
  // returns when runvm exits, while the container's shim still holds them.
  EngineIo Create(const std::vector<std::string>& args, bool global_flags = true) {
    EngineIo io;
    absl::StatusOr<Pipe> in = MakePipe(), out = MakePipe(), err = MakePipe();
    EXPECT_TRUE(in.ok() && out.ok() && err.ok());
    SpawnOptions o{.argv = Argv(args, global_flags),
                   .env = std::vector<std::string>{"RUNVM_CONFIG=" + config_,
                                                   "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}};
    o.fds = {{0, in->read.get()}, {1, out->write.get()}, {2, err->write.get()}};
    absl::StatusOr<Child> child = Spawn(o);
    EXPECT_THAT(child, IsOk());
    in->read.reset();
    out->write.reset();
    err->write.reset();
    io.stdin_w = std::move(in->write);
    io.stdout_r = std::move(out->read);
    io.stderr_r = std::move(err->read);
    if (child.ok()) {
      absl::StatusOr<ExitStatus> st = child->Wait(absl::Now() + absl::Seconds(120));
      if (st.ok()) io.create.code = st->ShellCode();
    }
    return io;
  }

  Json State(const std::string& id) {
    CommandResult r = Runvm({"state", id});
    EXPECT_EQ(r.code, 0) << r.err;
    Json j = Json::parse(r.out, nullptr, false);
    return j.is_discarded() ? Json::object() : j;
  }

  // Waits (a few seconds at most) until the container's status is `status`.
  std::string AwaitStatus(const std::string& id, const std::string& status) {
    std::string now;
    for (int i = 0; i < 100 && now != status; ++i) {
      now = State(id).value("status", "");
      if (now != status) absl::SleepFor(absl::Milliseconds(100));
    }
    return now;
  }

  // The last line of the --log file, parsed.
  Json LastLogLine() {
    absl::StatusOr<std::string> text = ReadFile(log_);
    if (!text.ok()) return Json();
    std::vector<std::string> lines =
        absl::StrSplit(absl::StripTrailingAsciiWhitespace(*text), '\n');
    return Json::parse(lines.back(), nullptr, false);
  }

  void ExpectNothingLeft(const std::string& id) {
    EXPECT_FALSE(std::filesystem::exists(root_ + "/" + id)) << id;
    absl::StatusOr<std::string> mounts = ReadFile("/proc/self/mounts");
    ASSERT_THAT(mounts, IsOk());
    EXPECT_THAT(*mounts, ::testing::Not(HasSubstr(root_))) << "a mount under the root is left";
    for (const ProcessIdentity& p : Helpers()) {
      ADD_FAILURE() << "left running: " << p.exe << " pid " << p.pid;
    }
    if (std::filesystem::exists(root_ + "/.vm")) {
      EXPECT_TRUE(std::filesystem::is_empty(root_ + "/.vm")) << "a VM run directory is left";
    }
  }

  // The processes carrying the marker of a sandbox under this test's root (QEMU, virtiofsd,
  // the watcher, the shims): RUNVM_SANDBOX_DIR=<root>/.vm/<32 hex digits>.
  std::vector<ProcessIdentity> Helpers() const {
    std::vector<ProcessIdentity> found;
    const std::string prefix = "RUNVM_SANDBOX_DIR=" + root_ + "/";
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      int pid = 0;
      if (!absl::SimpleAtoi(entry.path().filename().string(), &pid) || pid == ::getpid()) continue;
      absl::StatusOr<std::string> env = ReadFile(entry.path().string() + "/environ", 1 << 20);
      if (!env.ok()) continue;
      for (absl::string_view var : absl::StrSplit(*env, '\0')) {
        if (!absl::StartsWith(var, prefix)) continue;
        absl::StatusOr<ProcessIdentity> id = ReadProcessIdentity(pid);
        if (id.ok()) found.push_back(*std::move(id));
        break;
      }
    }
    return found;
  }

  TempDir dir_;
  std::string root_, log_, config_;
  Bundle bundle_;
  std::vector<std::string> ids_;
};

}  // namespace runvm::e2e

#endif  // RUNVM_TESTS_E2E_OCI_FIXTURE_H_
