#include "agent/cgroup.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>
#include <cerrno>
#include <functional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/devices.h"
#include "base/file.h"
#include "base/status.h"

namespace runvm::agent {
namespace {

absl::StatusOr<std::string> Read(const std::string& path) { return ReadFile(path, 1 << 16); }

// "max" is -1; a missing or unreadable file leaves `out` as it is.
void ReadValue(const std::string& path, int64_t* out) {
  absl::StatusOr<std::string> text = Read(path);
  if (!text.ok()) return;
  absl::string_view v = absl::StripAsciiWhitespace(*text);
  if (v == "max") {
    *out = -1;
    return;
  }
  (void)absl::SimpleAtoi(v, out);
}

// "key value" lines.
void ReadKeyed(const std::string& path, const std::function<void(absl::string_view, int64_t)>& f) {
  absl::StatusOr<std::string> text = Read(path);
  if (!text.ok()) return;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, ' ');
    int64_t v = 0;
    if (absl::SimpleAtoi(kv.second, &v)) f(kv.first, v);
  }
}

std::string MaxOr(int64_t v) { return v < 0 ? "max" : absl::StrCat(v); }

bool IsCgroup2(const std::string& path) {
  struct statfs fs {};
  return ::statfs(path.c_str(), &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

// Waits until cgroup.events says `key` is `value`.
absl::Status WaitEvent(const std::string& dir, absl::string_view key, int64_t value,
                       absl::Time deadline) {
  for (;;) {
    int64_t now = -1;
    ReadKeyed(dir + "/cgroup.events", [&](absl::string_view k, int64_t v) {
      if (k == key) now = v;
    });
    if (now == value) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(dir, ": ", key, " is still ", now, " (waited for ", value, ")"));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

}  // namespace

absl::Status GuestCgroups::Setup() {
  if (!IsCgroup2(root_)) {
    ::mkdir(root_.c_str(), 0755);
    if (::mount("cgroup2", root_.c_str(), "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) !=
        0) {
      return ErrnoError("mount cgroup2 at " + root_);
    }
  }
  ASSIGN_OR_RETURN(std::string offered, Read(root_ + "/cgroup.controllers"));
  for (absl::string_view c : absl::StrSplit(absl::StripAsciiWhitespace(offered), ' ')) {
    if (c != "cpu" && c != "cpuset" && c != "memory" && c != "pids") continue;
    const std::string path = root_ + "/cgroup.subtree_control";
    Fd f(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    const std::string op = absl::StrCat("+", c);
    if (!f.valid() || ::write(f.get(), op.data(), op.size()) < 0) {
      return ErrnoError(absl::StrCat("enable the ", c, " controller (", path, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status GuestCgroups::Write(const std::string& id, const char* file,
                                 const std::string& value) {
  const std::string path = Dir(id) + "/" + file;
  Fd f(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!f.valid() && errno == ENOENT) {
    const absl::string_view name(file);
    return absl::FailedPreconditionError(
        absl::StrCat("container ", id, ": ", file, ": the guest kernel has no ",
                     name.substr(0, name.find('.')), " controller"));
  }
  if (!f.valid() || ::write(f.get(), value.data(), value.size()) < 0) {
    return ErrnoError(absl::StrCat("container ", id, ": write \"", value, "\" to ", file));
  }
  return absl::OkStatus();
}

absl::StatusOr<Fd> GuestCgroups::Create(const std::string& id, const oci::Resources& r) {
  const std::string dir = Dir(id);
  if (::mkdir(dir.c_str(), 0755) != 0) {
    return ErrnoError(absl::StrCat("container ", id, ": create its cgroup ", dir));
  }
  if (absl::Status st = Apply(id, r); !st.ok()) {
    ::rmdir(dir.c_str());
    return st;
  }
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    absl::Status st = ErrnoError("open " + dir);
    ::rmdir(dir.c_str());
    return st;
  }
  // Before anything is born in it: the device allowlist (agent/devices.h).
  if (absl::Status st = AttachDeviceFilter(fd.get(), r.devices); !st.ok()) {
    ::rmdir(dir.c_str());
    return Annotate(st, "container " + id);
  }
  return fd;
}

absl::Status GuestCgroups::Apply(const std::string& id, const oci::Resources& r) {
  if (r.cpu) {
    const oci::CpuResources& c = *r.cpu;
    if (c.shares && *c.shares != 0) {
      // runc's mapping of shares [2, 262144] onto weight [1, 10000].
      const uint64_t shares = std::max<uint64_t>(*c.shares, 2);
      RETURN_IF_ERROR(Write(id, "cpu.weight", absl::StrCat(1 + ((shares - 2) * 9999) / 262142)));
    }
    if (c.quota || c.period) {
      const int64_t quota = c.quota.value_or(-1);
      RETURN_IF_ERROR(Write(
          id, "cpu.max",
          absl::StrCat(quota > 0 ? absl::StrCat(quota) : "max", " ", c.period.value_or(100000))));
    }
    if (!c.cpus.empty()) RETURN_IF_ERROR(Write(id, "cpuset.cpus", c.cpus));
    if (!c.mems.empty()) RETURN_IF_ERROR(Write(id, "cpuset.mems", c.mems));
  }
  if (r.memory) {
    const oci::MemoryResources& m = *r.memory;
    if (m.reservation) RETURN_IF_ERROR(Write(id, "memory.low", MaxOr(*m.reservation)));
    // OCI's swap figure is memory plus swap (v1's); v2 limits swap alone.
    if (m.limit) RETURN_IF_ERROR(Write(id, "memory.max", MaxOr(*m.limit)));
    if (m.swap) {
      const int64_t limit = m.limit.value_or(-1);
      if (*m.swap >= 0 && limit < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("container ", id, ": a memory+swap limit needs a memory limit"));
      }
      RETURN_IF_ERROR(
          Write(id, "memory.swap.max", *m.swap < 0 ? "max" : absl::StrCat(*m.swap - limit)));
    }
  }
  if (r.pids) {
    RETURN_IF_ERROR(Write(id, "pids.max", r.pids->limit > 0 ? absl::StrCat(r.pids->limit) : "max"));
  }
  return absl::OkStatus();
}

absl::Status GuestCgroups::Freeze(const std::string& id, bool frozen, absl::Time deadline) {
  RETURN_IF_ERROR(Write(id, "cgroup.freeze", frozen ? "1" : "0"));
  return WaitEvent(Dir(id), "frozen", frozen ? 1 : 0, deadline);
}

absl::StatusOr<agent_proto::CgroupStats> GuestCgroups::Stats(const std::string& id) const {
  const std::string dir = Dir(id);
  if (::access(dir.c_str(), F_OK) != 0) {
    return ErrnoError(absl::StrCat("container ", id, ": its cgroup ", dir));
  }
  agent_proto::CgroupStats s;
  ReadKeyed(dir + "/cpu.stat", [&](absl::string_view k, int64_t v) {
    if (k == "usage_usec") s.cpu_usage_usec = v;
    if (k == "user_usec") s.cpu_user_usec = v;
    if (k == "system_usec") s.cpu_system_usec = v;
    if (k == "nr_periods") s.cpu_periods = v;
    if (k == "nr_throttled") s.cpu_throttled_periods = v;
    if (k == "throttled_usec") s.cpu_throttled_usec = v;
  });
  ReadValue(dir + "/memory.current", &s.memory_current);
  ReadValue(dir + "/memory.max", &s.memory_max);
  ReadValue(dir + "/memory.peak", &s.memory_peak);
  ReadValue(dir + "/memory.swap.current", &s.swap_current);
  ReadValue(dir + "/memory.swap.max", &s.swap_max);
  ReadKeyed(dir + "/memory.events", [&](absl::string_view k, int64_t v) {
    if (k == "oom") s.oom = v;
    if (k == "oom_kill") s.oom_kill = v;
  });
  ReadKeyed(dir + "/memory.stat",
            [&](absl::string_view k, int64_t v) { s.memory_stat[std::string(k)] = v; });
  ReadValue(dir + "/pids.current", &s.pids_current);
  ReadValue(dir + "/pids.max", &s.pids_max);
  ReadKeyed(dir + "/cgroup.events", [&](absl::string_view k, int64_t v) {
    if (k == "frozen") s.frozen = v == 1;
  });
  return s;
}

absl::Status GuestCgroups::Remove(const std::string& id, absl::Time deadline) {
  const std::string dir = Dir(id);
  if (::access(dir.c_str(), F_OK) != 0) return absl::OkStatus();
  // A frozen cgroup's processes die only once thawed.
  (void)Write(id, "cgroup.freeze", "0");
  (void)Write(id, "cgroup.kill", "1");
  RETURN_IF_ERROR(WaitEvent(dir, "populated", 0, deadline));
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) return ErrnoError("remove cgroup " + dir);
  return absl::OkStatus();
}

}  // namespace runvm::agent
