#include "runtime/host/cgroups.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/fd.h"
#include "base/file.h"
#include "base/status.h"

namespace runvm {
namespace {

// O_CREAT is for test trees of plain directories; cgroupfs has every file it takes already.
absl::Status WriteTo(const std::string& file, const std::string& value) {
  Fd f(::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  if (!f.valid() || ::write(f.get(), value.data(), value.size()) < 0) {
    return ErrnoError(absl::StrCat("write ", value, " to ", file));
  }
  return absl::OkStatus();
}

// "/a/b/c" -> {"/a", "/a/b", "/a/b/c"}.
std::vector<std::string> Prefixes(const std::string& path) {
  std::vector<std::string> out;
  for (size_t at = path.find('/', 1); at != std::string::npos; at = path.find('/', at + 1)) {
    out.push_back(path.substr(0, at));
  }
  out.push_back(path);
  return out;
}

}  // namespace

absl::StatusOr<std::string> ResolveCgroupsPath(const std::string& cgroups_path, bool systemd) {
  if (cgroups_path.empty()) return std::string();
  if (!systemd) {
    if (!absl::StartsWith(cgroups_path, "/") || absl::StrContains(cgroups_path, "/../") ||
        absl::EndsWith(cgroups_path, "/..")) {
      return absl::InvalidArgumentError(
          absl::StrCat("linux.cgroupsPath \"", cgroups_path,
                       "\": an absolute path without \"..\" (or slice:prefix:name with "
                       "--systemd-cgroup)"));
    }
    std::string p = cgroups_path;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p;
  }
  std::vector<std::string> parts = absl::StrSplit(cgroups_path, ':');
  if (parts.size() != 3 || parts[2].empty() || absl::StrContains(cgroups_path, "/")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "linux.cgroupsPath \"", cgroups_path, "\": with --systemd-cgroup it is slice:prefix:name"));
  }
  std::string slice = parts[0].empty() ? "system.slice" : parts[0];
  if (!absl::EndsWith(slice, ".slice") || absl::StrContains(slice, "--") ||
      (absl::StartsWith(slice, "-") && slice != "-.slice")) {
    return absl::InvalidArgumentError(absl::StrCat("linux.cgroupsPath \"", cgroups_path, "\": \"",
                                                   slice, "\" is not a slice name"));
  }
  // systemd nests "a-b-c.slice" in "a-b.slice" in "a.slice" (-.slice is the root).
  std::string path;
  if (slice != "-.slice") {
    const std::string stem = slice.substr(0, slice.size() - 6);
    size_t at = 0;
    for (;;) {
      at = stem.find('-', at);
      absl::StrAppend(&path, "/", stem.substr(0, at), ".slice");
      if (at == std::string::npos) break;
      ++at;
    }
  }
  const std::string unit =
      parts[1].empty() ? parts[2] : absl::StrCat(parts[1], "-", parts[2], ".scope");
  return absl::StrCat(path, "/", unit);
}

absl::StatusOr<HostCgroups> HostCgroups::Detect(const std::string& mountinfo) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(mountinfo, 8 << 20));
  HostCgroups out;
  std::string v2;
  std::set<std::string> devices;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> halves = absl::StrSplit(line, " - ");
    std::vector<absl::string_view> f = absl::StrSplit(halves.first, ' ');
    std::vector<absl::string_view> g = absl::StrSplit(halves.second, ' ');
    if (f.size() < 5 || g.size() < 3 || f[3] != "/") continue;  // only whole hierarchies
    if (!devices.insert(std::string(f[2])).second) continue;    // each once
    if (g[0] == "cgroup2") {
      v2 = UnescapeMountPath(f[4]);
    } else if (g[0] == "cgroup") {
      out.dirs_.push_back(UnescapeMountPath(f[4]));
      bool cpuset = false;
      for (absl::string_view o : absl::StrSplit(g[2], ',')) cpuset = cpuset || o == "cpuset";
      out.cpuset_.push_back(cpuset);
    }
  }
  out.unified_ = out.dirs_.empty() && !v2.empty();
  if (!v2.empty()) {
    out.dirs_.push_back(v2);
    out.cpuset_.push_back(false);  // cgroup2 fills cpuset itself
  }
  if (out.dirs_.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("no cgroup hierarchy in ", mountinfo));
  }
  return out;
}

std::vector<std::string> HostCgroups::ToMake(const std::string& path) const {
  std::vector<std::string> out;
  for (const std::string& p : Prefixes(path)) {
    for (const std::string& d : dirs_) {
      if (::access((d + p).c_str(), F_OK) != 0) {
        out.push_back(p);
        break;
      }
    }
  }
  return out;
}

absl::Status HostCgroups::Create(const std::string& path) const {
  for (const std::string& p : Prefixes(path)) {
    for (size_t i = 0; i < dirs_.size(); ++i) {
      const std::string dir = dirs_[i] + p;
      if (::mkdir(dir.c_str(), 0755) != 0) {
        if (errno == EEXIST) continue;
        return ErrnoError(absl::StrCat("create cgroup ", dir));
      }
      if (cpuset_[i]) {
        // A v1 cpuset cgroup takes no process until it has CPUs and memory nodes.
        const std::string parent = dir.substr(0, dir.rfind('/'));
        for (const char* file : {"/cpuset.cpus", "/cpuset.mems"}) {
          absl::StatusOr<std::string> v = ReadFile(parent + file, 4096);
          if (!v.ok()) return v.status();
          RETURN_IF_ERROR(WriteTo(dir + file, std::string(absl::StripAsciiWhitespace(*v))));
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::Status HostCgroups::Join(const std::string& path, pid_t pid) const {
  for (const std::string& d : dirs_) {
    RETURN_IF_ERROR(WriteTo(d + path + "/cgroup.procs", absl::StrCat(pid)));
  }
  return absl::OkStatus();
}

absl::Status HostCgroups::JoinThread(const std::string& path, pid_t tid) const {
  if (unified_) {
    return absl::UnimplementedError("cgroup v2 cannot move one thread of a process elsewhere");
  }
  for (const std::string& d : dirs_) {
    // The cgroup2 hierarchy of a hybrid host only tracks processes; it takes no single thread.
    if (::access((d + "/cgroup.controllers").c_str(), F_OK) == 0) continue;
    RETURN_IF_ERROR(WriteTo(d + path + "/tasks", absl::StrCat(tid)));
  }
  return absl::OkStatus();
}

namespace {

// Whether `dir` has a cgroup below it (another container's, made after this one's parent).
bool HasChildCgroup(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.is_directory(ec)) return true;
  }
  return false;
}

}  // namespace

absl::Status HostCgroups::Remove(const std::vector<std::string>& made,
                                 absl::Duration patience) const {
  for (auto it = made.rbegin(); it != made.rend(); ++it) {
    for (const std::string& d : dirs_) {
      const std::string dir = d + *it;
      // A process that was just killed may still be listed: its pidfd says it exited before the
      // kernel unlinks it from its cgroups (at its last context switch), and on a loaded host
      // that is milliseconds later. Wait a little for that; not for another container's cgroup
      // below a parent this one made, which keeps the parent.
      const absl::Time deadline = absl::Now() + patience;
      while (::rmdir(dir.c_str()) != 0) {
        if (errno == ENOENT) break;
        if (errno != EBUSY) return ErrnoError("remove cgroup " + dir);
        if (HasChildCgroup(dir)) break;
        if (absl::Now() >= deadline) {
          absl::StatusOr<std::string> procs = ReadFile(dir + "/cgroup.procs", 1 << 16);
          return absl::FailedPreconditionError(absl::StrCat(
              "remove cgroup ", dir, ": still in use by pids [",
              absl::StrJoin(absl::StrSplit(procs.value_or(""), '\n', absl::SkipEmpty()), " "),
              "]"));
        }
        absl::SleepFor(absl::Milliseconds(10));
      }
    }
  }
  return absl::OkStatus();
}

namespace {
std::string ParentOf(const std::string& path) { return path.substr(0, path.rfind('/')); }
std::string BaseOf(const std::string& path) { return path.substr(path.rfind('/') + 1); }

void AddToMake(const HostCgroups& cg, const std::string& cgroup, Placement& p) {
  for (std::string& m : cg.ToMake(cgroup)) {
    if (std::find(p.to_make.begin(), p.to_make.end(), m) == p.to_make.end()) {
      p.to_make.push_back(std::move(m));
    }
  }
}
}  // namespace

Placement PlaceSandboxOwner(const HostCgroups& cg, const std::string& cgroups_path,
                            const std::string& id, bool sandbox_cgroup_only) {
  Placement p{.sandbox_cgroup_only = sandbox_cgroup_only};
  if (sandbox_cgroup_only) {
    p.cgroup = p.vmm = ParentOf(cgroups_path) + "/runvm_" + id;
  } else {
    p.cgroup = ParentOf(cgroups_path) + "/runvm_" + BaseOf(cgroups_path);
    p.vmm = cg.unified() ? p.cgroup : "/runvm_overhead/" + id;
  }
  AddToMake(cg, p.vmm, p);
  AddToMake(cg, p.cgroup, p);
  return p;
}

Placement PlaceMember(const HostCgroups& cg, const std::string& cgroups_path) {
  Placement p{.cgroup = ParentOf(cgroups_path) + "/runvm_" + BaseOf(cgroups_path)};
  AddToMake(cg, p.cgroup, p);
  return p;
}

absl::Status JoinHostCgroup(const std::string& cgroup, pid_t pid) {
  if (cgroup.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(HostCgroups cg, HostCgroups::Detect());
  return cg.Join(cgroup, pid);
}

absl::Status PlaceVcpus(const std::string& cgroup, const std::vector<int>& threads) {
  if (cgroup.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(HostCgroups cg, HostCgroups::Detect());
  if (cg.unified()) return absl::OkStatus();
  for (int tid : threads) RETURN_IF_ERROR(cg.JoinThread(cgroup, tid));
  return absl::OkStatus();
}

absl::Status RemoveHostCgroups(const std::vector<std::string>& made) {
  if (made.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(HostCgroups cg, HostCgroups::Detect());
  return cg.Remove(made);
}

}  // namespace runvm
