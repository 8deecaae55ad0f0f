#include "agent/container.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status.h"
#include "base/unix_socket.h"

extern char** environ;

namespace runvm::agent {
namespace {

// ---- what the child does, prepared by the parent ----

struct MountStep {
  std::string what;  // for errors: "mount /proc (proc)"
  std::string source, target, type, data;
  unsigned long flags = 0;
  unsigned long propagation = 0;
  bool readonly_bind = false;  // a bind mount that needs a read-only remount
  // Made by the parent, so that the child allocates nothing (below). The destination relative
  // to the rootfs, and each of its parents ("a", "a/b" for "/a/b/c") with its last name: the
  // child opens each inside the rootfs (OpenInRoot) and makes a missing one in its parent.
  std::string rel_target, target_name;
  std::vector<std::string> rel_parents, parent_names;
  std::string fail_mount, fail_remount, fail_propagation, fail_mount_point;
};

struct PathStep {  // a device node, a masked or a read-only path
  std::string path, source, failure;
};

}  // namespace

// Everything the child needs, made by the parent. The child is cloned with a raw clone3, which
// skips glibc's fork handlers: another thread of the agent (a relay) may hold the allocator's
// lock at that instant, so the child must not allocate, nor call glibc's set*id wrappers (they
// wait for the agent's other threads, which the child does not have). It uses these strings'
// c_str()s and the prepared pointer arrays only.
struct Plan {
  std::string rootfs;
  int clone_flags = 0;
  std::vector<MountStep> mounts;
  std::vector<PathStep> dev_nodes;  // bound from the agent's /dev
  std::string dev_dir;
  std::vector<std::pair<std::string, std::string>> dev_links;  // path, target
  std::string hostname;
  std::vector<PathStep> masked, readonly_paths;
  // linux.sysctl: path under /proc/sys, the value as `source`; written by the container's init
  // (not by its execs) in its own namespaces, before the read-only and masked paths, as runc.
  std::vector<PathStep> sysctls;
  std::string fail_bind_rootfs, fail_chdir_rootfs, fail_pivot, fail_hostname, fail_cwd, fail_exec,
      oom_score_adj_text;
  std::vector<char*> argv, envp;
  // Where the program may be (argv[0] itself when it has a slash, else each directory of the
  // spec's PATH): the child looks before it reports ready, so that a missing program fails
  // create or exec (runc's LookPath) instead of becoming an exit status of 127.
  std::vector<std::string> program_candidates;
  std::string fail_lookup;
  std::vector<sock_filter> filter;  // the seccomp program, compiled by libseccomp
  bool readonly_root = false;
  std::vector<std::pair<int, rlimit>> rlimits;
  std::vector<gid_t> groups;
  uid_t uid = 0;
  gid_t gid = 0;
  std::optional<mode_t> umask;
  std::vector<int> bounding, ambient;
  cap_t caps = nullptr;  // effective, permitted, inheritable
  bool no_new_privs = false;
  bool seccomp = false;
  std::optional<int> oom_score_adj;
  std::string cwd;
  std::vector<std::string> args, env;
  bool terminal = false;
  // An exec: join the namespaces of the init behind this pidfd (its pid namespace is joined by
  // the clone itself) instead of making new ones and mounting.
  int join_pidfd = -1;
  int join_flags = 0;
  // Born in its cgroup: the cgroup namespace is made by the child, once it is there.
  bool unshare_cgroup = false;
  std::vector<std::pair<int, int>> join_ns;  // namespaces joined by path: fd, CLONE_NEW* type
};

namespace {

struct PlanDeleter {
  void operator()(Plan* p) const {
    if (p->caps) cap_free(p->caps);
    for (const auto& [fd, type] : p->join_ns) ::close(fd);
    delete p;
  }
};

const std::map<std::string, int>& NamespaceFlags() {
  static const auto* m = new std::map<std::string, int>{
      {"pid", CLONE_NEWPID}, {"network", CLONE_NEWNET}, {"mount", CLONE_NEWNS},
      {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},     {"cgroup", CLONE_NEWCGROUP}};
  return *m;
}

// Options into flags and data, as runc reads them.
void ParseMountOptions(const std::vector<std::string>& options, MountStep& m) {
  struct Flag {
    bool clear;
    unsigned long flag;
  };
  static const auto* flags =
      new std::map<std::string, Flag>{{"ro", {false, MS_RDONLY}},
                                      {"rw", {true, MS_RDONLY}},
                                      {"nosuid", {false, MS_NOSUID}},
                                      {"suid", {true, MS_NOSUID}},
                                      {"nodev", {false, MS_NODEV}},
                                      {"dev", {true, MS_NODEV}},
                                      {"noexec", {false, MS_NOEXEC}},
                                      {"exec", {true, MS_NOEXEC}},
                                      {"sync", {false, MS_SYNCHRONOUS}},
                                      {"async", {true, MS_SYNCHRONOUS}},
                                      {"dirsync", {false, MS_DIRSYNC}},
                                      {"noatime", {false, MS_NOATIME}},
                                      {"atime", {true, MS_NOATIME}},
                                      {"nodiratime", {false, MS_NODIRATIME}},
                                      {"relatime", {false, MS_RELATIME}},
                                      {"norelatime", {true, MS_RELATIME}},
                                      {"strictatime", {false, MS_STRICTATIME}},
                                      {"bind", {false, MS_BIND}},
                                      {"rbind", {false, MS_BIND | MS_REC}}};
  static const auto* propagation = new std::map<std::string, unsigned long>{
      {"private", MS_PRIVATE}, {"rprivate", MS_PRIVATE | MS_REC},
      {"shared", MS_SHARED},   {"rshared", MS_SHARED | MS_REC},
      {"slave", MS_SLAVE},     {"rslave", MS_SLAVE | MS_REC}};
  std::vector<std::string> data;
  for (const std::string& o : options) {
    if (auto f = flags->find(o); f != flags->end()) {
      if (f->second.clear) {
        m.flags &= ~f->second.flag;
      } else {
        m.flags |= f->second.flag;
      }
    } else if (auto p = propagation->find(o); p != propagation->end()) {
      m.propagation |= p->second;
    } else {
      data.push_back(o);
    }
  }
  m.data = absl::StrJoin(data, ",");
  if ((m.flags & MS_BIND) && (m.flags & MS_RDONLY)) m.readonly_bind = true;
}

int RlimitResource(absl::string_view type) {
  static const auto* m =
      new std::map<std::string, int, std::less<>>{{"RLIMIT_AS", RLIMIT_AS},
                                                  {"RLIMIT_CORE", RLIMIT_CORE},
                                                  {"RLIMIT_CPU", RLIMIT_CPU},
                                                  {"RLIMIT_DATA", RLIMIT_DATA},
                                                  {"RLIMIT_FSIZE", RLIMIT_FSIZE},
                                                  {"RLIMIT_LOCKS", RLIMIT_LOCKS},
                                                  {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
                                                  {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
                                                  {"RLIMIT_NICE", RLIMIT_NICE},
                                                  {"RLIMIT_NOFILE", RLIMIT_NOFILE},
                                                  {"RLIMIT_NPROC", RLIMIT_NPROC},
                                                  {"RLIMIT_RSS", RLIMIT_RSS},
                                                  {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
                                                  {"RLIMIT_RTTIME", RLIMIT_RTTIME},
                                                  {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
                                                  {"RLIMIT_STACK", RLIMIT_STACK}};
  auto it = m->find(type);
  return it == m->end() ? -1 : it->second;
}

absl::StatusOr<int> CapValue(const std::string& name) {
  cap_value_t v;
  std::string lower = name;
  for (char& c : lower) c = static_cast<char>(std::tolower(c));
  if (cap_from_name(lower.c_str(), &v) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("process.capabilities: unknown ", name));
  }
  return static_cast<int>(v);
}

absl::StatusOr<std::vector<int>> CapValues(const std::vector<std::string>& names) {
  std::vector<int> out;
  for (const std::string& n : names) {
    ASSIGN_OR_RETURN(int v, CapValue(n));
    out.push_back(v);
  }
  return out;
}

absl::StatusOr<uint32_t> SeccompAction(const std::string& action, std::optional<uint32_t> errno_ret,
                                       const std::string& where) {
  if (action == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (action == "SCMP_ACT_KILL" || action == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL;
  if (action == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (action == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(errno_ret.value_or(EPERM));
  if (action == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (action == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  return absl::InvalidArgumentError(
      absl::StrCat(where, ": seccomp action \"", action, "\" is not supported"));
}

absl::StatusOr<scmp_compare> SeccompOp(const std::string& op) {
  static const auto* m =
      new std::map<std::string, scmp_compare>{{"SCMP_CMP_NE", SCMP_CMP_NE},
                                              {"SCMP_CMP_LT", SCMP_CMP_LT},
                                              {"SCMP_CMP_LE", SCMP_CMP_LE},
                                              {"SCMP_CMP_EQ", SCMP_CMP_EQ},
                                              {"SCMP_CMP_GE", SCMP_CMP_GE},
                                              {"SCMP_CMP_GT", SCMP_CMP_GT},
                                              {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
  auto it = m->find(op);
  if (it == m->end()) return absl::InvalidArgumentError("seccomp: unknown operator " + op);
  return it->second;
}

absl::StatusOr<scmp_filter_ctx> BuildSeccomp(const oci::Seccomp& s) {
  ASSIGN_OR_RETURN(uint32_t def, SeccompAction(s.default_action, s.default_errno_ret,
                                               "linux.seccomp.defaultAction"));
  scmp_filter_ctx ctx = seccomp_init(def);
  if (ctx == nullptr) return absl::InternalError("seccomp_init failed");
  auto fail = [&](absl::Status st) {
    seccomp_release(ctx);
    return st;
  };
  for (const std::string& arch : s.architectures) {
    std::string lower(absl::StartsWith(arch, "SCMP_ARCH_") ? arch.substr(10) : arch);
    for (char& c : lower) c = static_cast<char>(std::tolower(c));
    uint32_t a = seccomp_arch_resolve_name(lower.c_str());
    if (a != 0 && a != seccomp_arch_native()) {
      int r = seccomp_arch_add(ctx, a);
      if (r != 0 && r != -EEXIST) {
        return fail(absl::InvalidArgumentError("seccomp: cannot add architecture " + arch));
      }
    }
  }
  for (size_t i = 0; i < s.syscalls.size(); ++i) {
    const oci::SeccompSyscall& sys = s.syscalls[i];
    const std::string where = absl::StrCat("linux.seccomp.syscalls[", i, "]");
    absl::StatusOr<uint32_t> action = SeccompAction(sys.action, sys.errno_ret, where);
    if (!action.ok()) return fail(action.status());
    if (*action == def) continue;  // libseccomp refuses a rule equal to the default
    std::vector<scmp_arg_cmp> cmps;
    for (const oci::SeccompArg& a : sys.args) {
      absl::StatusOr<scmp_compare> op = SeccompOp(a.op);
      if (!op.ok()) return fail(op.status());
      cmps.push_back({a.index, *op, a.value, a.value_two});
    }
    for (const std::string& name : sys.names) {
      int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) continue;  // unknown here: runc skips it too
      int r =
          seccomp_rule_add_array(ctx, *action, nr, static_cast<unsigned>(cmps.size()), cmps.data());
      if (r != 0) {
        return fail(absl::InvalidArgumentError(
            absl::StrCat(where, ": seccomp rule for ", name, ": ", std::strerror(-r))));
      }
    }
  }
  return ctx;
}

// "/a/b/c" -> {"/a", "/a/b", "/a/b/c"}.
// The mount destination `dest`, relative to the rootfs, with its parents (MountStep).
void SplitDestination(const std::string& dest, MountStep& step) {
  std::vector<std::string> names = absl::StrSplit(dest, '/', absl::SkipEmpty());
  if (names.empty()) names.push_back(".");
  std::string rel;
  for (size_t i = 0; i + 1 < names.size(); ++i) {
    rel = rel.empty() ? names[i] : absl::StrCat(rel, "/", names[i]);
    step.rel_parents.push_back(rel);
    step.parent_names.push_back(names[i]);
  }
  step.rel_target = absl::StrJoin(names, "/");
  step.target_name = names.back();
}

// The filter as a BPF program (libseccomp's loader allocates; the child cannot).
absl::StatusOr<std::vector<sock_filter>> ExportSeccomp(scmp_filter_ctx ctx) {
  // The process asks for no_new_privileges itself when the spec says so; libseccomp's default
  // would set it regardless.
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  Fd mem(::memfd_create("runvm-seccomp", MFD_CLOEXEC));
  if (!mem.valid()) return ErrnoError("memfd_create");
  if (int r = seccomp_export_bpf(ctx, mem.get()); r != 0) {
    return absl::InternalError(absl::StrCat("seccomp_export_bpf: ", std::strerror(-r)));
  }
  off_t size = ::lseek(mem.get(), 0, SEEK_END);
  if (size < 0 || size % sizeof(sock_filter) != 0) {
    return absl::InternalError("seccomp: the exported program has an odd size");
  }
  std::vector<sock_filter> program(static_cast<size_t>(size) / sizeof(sock_filter));
  if (::pread(mem.get(), program.data(), static_cast<size_t>(size), 0) != size) {
    return ErrnoError("read the seccomp program");
  }
  return program;
}

absl::StatusOr<std::unique_ptr<Plan, PlanDeleter>> MakePlan(const ContainerConfig& c) {
  std::unique_ptr<Plan, PlanDeleter> p(new Plan);
  p->terminal = c.terminal;
  const oci::Spec& s = c.spec;
  p->rootfs = c.rootfs;
  for (const oci::Namespace& ns : s.linux.namespaces) {
    auto it = NamespaceFlags().find(ns.type);
    if (it == NamespaceFlags().end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("linux.namespaces: \"", ns.type, "\" is not supported in the guest"));
    }
    if (!ns.path.empty()) {
      // A pod's containers share the sandbox container's network, ipc and uts namespaces: the
      // host names them by the guest's /proc/<pid>/ns/<type>.
      if (it->second == CLONE_NEWPID || it->second == CLONE_NEWNS) {
        return absl::InvalidArgumentError(absl::StrCat("linux.namespaces: joining a ", ns.type,
                                                       " namespace (", ns.path,
                                                       ") is not supported in the guest"));
      }
      int fd = ::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return ErrnoError(absl::StrCat("linux.namespaces: ", ns.type, " ", ns.path));
      p->join_ns.emplace_back(fd, it->second);
      continue;
    }
    p->clone_flags |= it->second;
  }
  // The guest's cgroups are v2 whatever the host's: a container born in a cgroup of its own sees
  // that cgroup as its root even when the spec names no cgroup namespace (engines on a cgroup
  // v1 host leave it out), so that its limits show in /sys/fs/cgroup and its siblings do not.
  const bool names_cgroup_ns =
      std::any_of(s.linux.namespaces.begin(), s.linux.namespaces.end(),
                  [](const oci::Namespace& ns) { return ns.type == "cgroup"; });
  if (c.cgroup_fd >= 0 && !names_cgroup_ns) p->clone_flags |= CLONE_NEWCGROUP;
  const bool new_mount_ns = p->clone_flags & CLONE_NEWNS;
  if (!new_mount_ns && !s.mounts.empty()) {
    return absl::InvalidArgumentError("mounts need a mount namespace (linux.namespaces)");
  }
  for (const oci::Mount& m : s.mounts) {
    MountStep step{.what = absl::StrCat("mount ", m.destination, " (", m.type, ")"),
                   .source = m.source,
                   .target = c.rootfs + m.destination,
                   .type = m.type == "cgroup" ? "cgroup2" : m.type};
    ParseMountOptions(m.options, step);
    if ((step.flags & MS_BIND) && !absl::StartsWith(step.source, "/")) {
      // The host resolves a relative source against the bundle and shares it: one that
      // reaches the guest is nobody's to resolve.
      return absl::InvalidArgumentError(
          absl::StrCat(step.what, ": the bind source ", step.source, " is not absolute"));
    }
    SplitDestination(m.destination, step);
    step.fail_mount = absl::StrCat(step.what, " on ", step.target);
    step.fail_mount_point =
        absl::StrCat(step.what, ": make the mount point ", m.destination, " inside the rootfs");
    step.fail_remount = absl::StrCat(step.what, ": read-only remount");
    step.fail_propagation = absl::StrCat(step.what, ": propagation");
    p->mounts.push_back(std::move(step));
  }
  p->dev_dir = c.rootfs + "/dev";
  for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"}) {
    p->dev_nodes.push_back({.path = absl::StrCat(p->dev_dir, "/", node),
                            .source = absl::StrCat("/dev/", node),
                            .failure = absl::StrCat("bind /dev/", node)});
  }
  for (auto [link, to] : {std::pair{"fd", "/proc/self/fd"},
                          {"stdin", "/proc/self/fd/0"},
                          {"stdout", "/proc/self/fd/1"},
                          {"stderr", "/proc/self/fd/2"},
                          {"ptmx", "pts/ptmx"}}) {
    p->dev_links.emplace_back(absl::StrCat(p->dev_dir, "/", link), to);
  }
  p->fail_bind_rootfs = "bind mount the rootfs " + c.rootfs;
  p->fail_chdir_rootfs = "chdir " + c.rootfs;
  p->fail_pivot = "pivot_root " + c.rootfs;
  p->hostname = s.hostname;
  p->fail_hostname = "sethostname " + s.hostname;
  if (!p->hostname.empty() && !(p->clone_flags & CLONE_NEWUTS)) {
    return absl::InvalidArgumentError("hostname needs a uts namespace (linux.namespaces)");
  }
  for (const std::string& path : s.linux.masked_paths) {
    p->masked.push_back({.path = path, .failure = "mask " + path});
  }
  for (const std::string& path : s.linux.readonly_paths) {
    p->readonly_paths.push_back({.path = path, .failure = "make " + path + " read-only"});
  }
  p->readonly_root = s.root.readonly;
  for (const oci::Rlimit& r : s.process.rlimits) {
    int resource = RlimitResource(r.type);
    if (resource < 0) return absl::InvalidArgumentError("process.rlimits: unknown " + r.type);
    p->rlimits.push_back({resource, rlimit{r.soft, r.hard}});
  }
  for (const auto& [key, value] : s.linux.sysctl) {
    // The guest is the pod's own: any sysctl is the pod's to set (runc, on a shared host kernel,
    // refuses those no namespace isolates). Keys are names, not paths.
    if (key.empty() || key.front() == '.' || key.find("..") != key.npos ||
        key.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/") != key.npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("linux.sysctl: \"", key, "\" is no sysctl name"));
    }
    std::string path = "/proc/sys/" + key;
    std::replace(path.begin() + 10, path.end(), '.', '/');
    p->sysctls.push_back({.path = path,
                          .source = value,
                          .failure = absl::StrCat("linux.sysctl: write ", key, " = ", value)});
  }
  p->uid = s.process.user.uid;
  p->gid = s.process.user.gid;
  p->umask = s.process.user.umask;
  for (uint32_t g : s.process.user.additional_gids) p->groups.push_back(g);
  {
    // No capabilities in the spec means none, as under runc (not the agent's full set).
    const oci::Capabilities caps = s.process.capabilities.value_or(oci::Capabilities{});
    ASSIGN_OR_RETURN(p->bounding, CapValues(caps.bounding));
    ASSIGN_OR_RETURN(p->ambient, CapValues(caps.ambient));
    p->caps = cap_init();
    for (auto [set, names] :
         {std::pair{CAP_EFFECTIVE, &caps.effective}, std::pair{CAP_PERMITTED, &caps.permitted},
          std::pair{CAP_INHERITABLE, &caps.inheritable}}) {
      ASSIGN_OR_RETURN(std::vector<int> values, CapValues(*names));
      std::vector<cap_value_t> v(values.begin(), values.end());
      if (!v.empty() &&
          cap_set_flag(p->caps, set, static_cast<int>(v.size()), v.data(), CAP_SET) != 0) {
        return absl::InternalError("cap_set_flag failed");
      }
    }
  }
  p->no_new_privs = s.process.no_new_privileges;
  if (s.linux.seccomp) {
    ASSIGN_OR_RETURN(scmp_filter_ctx ctx, BuildSeccomp(*s.linux.seccomp));
    absl::StatusOr<std::vector<sock_filter>> program = ExportSeccomp(ctx);
    seccomp_release(ctx);
    if (!program.ok()) return program.status();
    p->filter = *std::move(program);
    p->seccomp = true;
  }
  p->oom_score_adj = s.process.oom_score_adj;
  if (p->oom_score_adj) p->oom_score_adj_text = std::to_string(*p->oom_score_adj);
  p->cwd = s.process.cwd;
  p->fail_cwd = "chdir " + s.process.cwd;
  p->args = s.process.args;
  p->env = s.process.env;
  p->fail_exec = "exec " + s.process.args[0];
  const std::string& program = s.process.args[0];
  if (program.find('/') != std::string::npos) {
    p->program_candidates.push_back(program);
  } else {
    std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (const std::string& e : s.process.env) {
      if (absl::StartsWith(e, "PATH=")) path = e.substr(5);
    }
    for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
      p->program_candidates.push_back(absl::StrCat(dir, "/", program));
    }
  }
  p->fail_lookup = absl::StrCat("exec: \"", program, "\": executable file not found in $PATH");
  for (std::string& a : p->args) p->argv.push_back(a.data());
  p->argv.push_back(nullptr);
  for (std::string& e : p->env) p->envp.push_back(e.data());
  p->envp.push_back(nullptr);
  return p;
}

// ---- the child: system calls on prepared data only (see Plan) ----

void WriteStr(int fd, const char* s) {
  [[maybe_unused]] ssize_t n = ::write(fd, s, std::strlen(s));
}

// Reports `what` and the error to the parent, and exits.
[[noreturn]] void Die(int status_fd, const char* what, int err = errno) {
  WriteStr(status_fd, what);
  WriteStr(status_fd, ": ");
  WriteStr(status_fd, std::strerror(err));
  ::_exit(127);
}
[[noreturn]] void Die(int status_fd, const std::string& what, int err = errno) {
  Die(status_fd, what.c_str(), err);
}

// Opens `rel` below the rootfs `root` as the container will see it: symlinks and ".." resolve
// inside the rootfs (RESOLVE_IN_ROOT), never out of it, whatever the image holds.
int OpenInRoot(int root, const char* rel, uint64_t flags) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, root, rel, &how, sizeof how));
}

// Makes `name` in `dir` (a directory, or an empty file): never through a symlink there.
void MakeIn(int dir, const char* name, bool file) {
  if (!file) {
    ::mkdirat(dir, name, 0755);
    return;
  }
  int fd = ::openat(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd >= 0) ::close(fd);
}

// The mount point of `m` inside the rootfs, made as needed (parents as directories, the target
// as a directory or, for a file bind, a file): an O_PATH fd, or -1 with errno.
int MountPoint(int root, const MountStep& m, bool file) {
  int dir = ::fcntl(root, F_DUPFD_CLOEXEC, 0);
  for (size_t i = 0; i < m.rel_parents.size() && dir >= 0; ++i) {
    int next = OpenInRoot(root, m.rel_parents[i].c_str(), O_PATH | O_DIRECTORY);
    if (next < 0 && errno == ENOENT) {
      MakeIn(dir, m.parent_names[i].c_str(), /*file=*/false);
      next = OpenInRoot(root, m.rel_parents[i].c_str(), O_PATH | O_DIRECTORY);
    }
    const int err = errno;
    ::close(dir);
    dir = next;
    errno = err;
  }
  if (dir < 0) return -1;
  int fd = OpenInRoot(root, m.rel_target.c_str(), O_PATH);
  if (fd < 0 && errno == ENOENT) {
    MakeIn(dir, m.target_name.c_str(), file);
    fd = OpenInRoot(root, m.rel_target.c_str(), O_PATH);
  }
  const int err = errno;
  ::close(dir);
  errno = err;
  return fd;
}

// "/proc/self/fd/<fd>" into `buf`, without allocating: how the child names what it opened.
const char* FdPath(int fd, char (&buf)[32]) {
  char digits[16];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + fd % 10);
    fd /= 10;
  } while (fd > 0 && n < 15);
  const char prefix[] = "/proc/self/fd/";
  std::memcpy(buf, prefix, sizeof prefix - 1);
  size_t at = sizeof prefix - 1;
  while (n > 0) buf[at++] = digits[--n];
  buf[at] = '\0';
  return buf;
}

// The container's sysctls, through the container's /proc. Only the init writes them.
void WriteSysctls(const Plan& p, int status_fd) {
  if (p.join_pidfd >= 0) return;
  for (const PathStep& s : p.sysctls) {
    int fd = ::open(s.path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || ::write(fd, s.source.data(), s.source.size()) < 0) Die(status_fd, s.failure);
    ::close(fd);
  }
}

bool LoadFilter(const Plan& p) {
  sock_fprog prog{.len = static_cast<unsigned short>(p.filter.size()),
                  .filter = const_cast<sock_filter*>(p.filter.data())};
  return ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0;
}

// The container's terminal: a pty from the /dev/ptmx the process sees (its own devpts instance
// when the spec mounts one), its peer as fds 0-2 and controlling terminal of a new session, the
// master sent to the agent over `console_fd`. No allocation: TIOCGPTPEER opens the peer without
// its path.
bool OpenTerminalInside(int console_fd) {
  int master = ::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  int unlock = 0;
  if (master < 0 || ::ioctl(master, TIOCSPTLCK, &unlock) != 0) return false;
  int slave = ::ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  if (slave < 0) return false;
  for (int i = 0; i < 3; ++i) {
    if (::dup2(slave, i) < 0) return false;
  }
  ::close(slave);
  if (::setsid() < 0 || ::ioctl(0, TIOCSCTTY, 0) != 0) return false;
  if (!SendFd(console_fd, master, "t", 1)) return false;
  ::close(master);
  ::close(console_fd);
  return true;
}

[[noreturn]] void RunChild(const Plan& p, const std::array<int, 3>& stdio, int status_fd,
                           int start_fd, int console_fd) {
  // Nothing of the agent's reaches the process: every descriptor closes at exec.
  ::syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int i = 0; i < 3; ++i) {
    int from = stdio[i] >= 0 ? stdio[i] : devnull;
    if (::dup2(from, i) < 0) Die(status_fd, "stdio");
  }
  struct stat st;
  for (const auto& [fd, type] : p.join_ns) {
    if (::setns(fd, type) != 0) Die(status_fd, "join a namespace named by linux.namespaces");
  }
  if (p.unshare_cgroup && ::unshare(CLONE_NEWCGROUP) != 0) {
    Die(status_fd, "make the cgroup namespace");
  }
  if (p.join_pidfd >= 0) {
    // Joining the mount namespace puts the root and cwd at its root, which setns follows down
    // through the rootfs mounted over it: the container's root, pivoted or moved.
    if (::setns(p.join_pidfd, p.join_flags) != 0) Die(status_fd, "join the container's namespaces");
    if (::chdir("/") != 0) Die(status_fd, "chdir /");
  } else if (p.clone_flags & CLONE_NEWNS) {
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
      Die(status_fd, "make / a slave mount");
    }
    if (::mount(p.rootfs.c_str(), p.rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      Die(status_fd, p.fail_bind_rootfs);
    }
    // Every mount point is opened inside the rootfs (a symlink or ".." in the image resolves
    // there, as under runc's securejoin) and mounted on through its fd.
    const int root = ::open(p.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) Die(status_fd, p.fail_chdir_rootfs);
    char at[32];
    for (const MountStep& m : p.mounts) {
      const bool file_bind =
          (m.flags & MS_BIND) && ::stat(m.source.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
      int point = MountPoint(root, m, file_bind);
      if (point < 0) Die(status_fd, m.fail_mount_point);
      unsigned long flags = m.flags & ~(m.readonly_bind ? MS_RDONLY : 0);
      if (::mount(m.source.c_str(), FdPath(point, at), m.type.c_str(), flags,
                  m.data.empty() ? nullptr : m.data.c_str()) != 0) {
        Die(status_fd, m.fail_mount);
      }
      ::close(point);
      if (m.readonly_bind || m.propagation != 0) {
        // The fd names what was under the mount: the new mount is opened again.
        point = OpenInRoot(root, m.rel_target.c_str(), O_PATH);
        if (point < 0) Die(status_fd, m.fail_mount_point);
        if (m.readonly_bind && ::mount(nullptr, FdPath(point, at), nullptr,
                                       MS_BIND | MS_REMOUNT | MS_RDONLY | flags, nullptr) != 0) {
          Die(status_fd, m.fail_remount);
        }
        if (m.propagation != 0 &&
            ::mount(nullptr, FdPath(point, at), nullptr, m.propagation, nullptr) != 0) {
          Die(status_fd, m.fail_propagation);
        }
        ::close(point);
      }
    }
    // The devices every container has, from the guest's /dev (a bind works in any namespace),
    // made in the rootfs's own /dev and never through a symlink there.
    if (int dev = OpenInRoot(root, "dev", O_PATH | O_DIRECTORY); dev >= 0) {
      for (const PathStep& node : p.dev_nodes) {
        const char* name = node.path.c_str() + p.dev_dir.size() + 1;
        if (::fstatat(dev, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISCHR(st.st_mode)) continue;
        MakeIn(dev, name, /*file=*/true);
        int point = ::openat(dev, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (point < 0 || ::fstat(point, &st) != 0 || !S_ISREG(st.st_mode)) {
          Die(status_fd, node.failure, point < 0 ? errno : ELOOP);
        }
        if (::mount(node.source.c_str(), FdPath(point, at), nullptr, MS_BIND, nullptr) != 0) {
          Die(status_fd, node.failure);
        }
        ::close(point);
      }
      for (const auto& [link, to] : p.dev_links) {
        const char* name = link.c_str() + p.dev_dir.size() + 1;
        [[maybe_unused]] int r = ::symlinkat(to.c_str(), dev, name);
      }
      ::close(dev);
    }
    ::close(root);
    // The guest's root is a tmpfs (guest/init leaves the initramfs), so pivot_root always
    // works: no MS_MOVE + chroot fallback, which CAP_SYS_CHROOT escapes.
    if (::chdir(p.rootfs.c_str()) != 0) Die(status_fd, p.fail_chdir_rootfs);
    if (::syscall(SYS_pivot_root, ".", ".") != 0) Die(status_fd, p.fail_pivot);
    if (::umount2(".", MNT_DETACH) != 0) Die(status_fd, "detach the old root");
    if (::chdir("/") != 0) Die(status_fd, "chdir /");
    WriteSysctls(p, status_fd);
    for (const PathStep& m : p.masked) {
      if (::stat(m.path.c_str(), &st) != 0) continue;
      int r = S_ISDIR(st.st_mode) ? ::mount("tmpfs", m.path.c_str(), "tmpfs", MS_RDONLY, "size=0")
                                  : ::mount("/dev/null", m.path.c_str(), nullptr, MS_BIND, nullptr);
      if (r != 0) Die(status_fd, m.failure);
    }
    for (const PathStep& ro : p.readonly_paths) {
      if (::stat(ro.path.c_str(), &st) != 0) continue;
      if (::mount(ro.path.c_str(), ro.path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
          ::mount(nullptr, ro.path.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC,
                  nullptr) != 0) {
        Die(status_fd, ro.failure);
      }
    }
    if (p.readonly_root &&
        ::mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
      Die(status_fd, "make the root read-only");
    }
  } else if (::chroot(p.rootfs.c_str()) != 0 || ::chdir("/") != 0) {
    Die(status_fd, p.fail_chdir_rootfs);
  } else {
    WriteSysctls(p, status_fd);
  }
  if (console_fd >= 0 && !OpenTerminalInside(console_fd)) {
    Die(status_fd, "open a terminal on the container's /dev/ptmx");
  }
  if (p.join_pidfd < 0 && !p.hostname.empty() &&
      ::sethostname(p.hostname.data(), p.hostname.size()) != 0) {
    Die(status_fd, p.fail_hostname);
  }
  for (const auto& [resource, limit] : p.rlimits) {
    if (::setrlimit(resource, &limit) != 0) Die(status_fd, "setrlimit");
  }
  if (p.oom_score_adj) {
    int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, p.oom_score_adj_text.data(), p.oom_score_adj_text.size()) < 0) {
      Die(status_fd, "oom_score_adj");
    }
    ::close(fd);
  }
  // Without no_new_privileges, a filter must be loaded while the process may still do so.
  if (p.seccomp && !p.no_new_privs && !LoadFilter(p)) Die(status_fd, "load the seccomp filter");
  if (p.caps) {
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
      bool keep = false;
      for (int b : p.bounding) keep |= b == cap;
      if (!keep && ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
        Die(status_fd, "drop from the bounding set");
      }
    }
    if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) Die(status_fd, "PR_SET_KEEPCAPS");
  }
  // Raw system calls: glibc's wrappers would apply the change to every thread the agent had when
  // it cloned (nptl's setxid), waiting forever on threads that do not exist in this process.
  if (::syscall(SYS_setgroups, p.groups.size(), p.groups.data()) != 0) {
    Die(status_fd, "setgroups");
  }
  if (::syscall(SYS_setresgid, p.gid, p.gid, p.gid) != 0) Die(status_fd, "setresgid");
  if (::syscall(SYS_setresuid, p.uid, p.uid, p.uid) != 0) Die(status_fd, "setresuid");
  if (p.caps) {
    if (cap_set_proc(p.caps) != 0) Die(status_fd, "set capabilities");
    for (int cap : p.ambient) {
      if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) {
        Die(status_fd, "raise an ambient capability");
      }
    }
  }
  if (p.umask) ::umask(*p.umask);
  if (p.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    Die(status_fd, "no_new_privileges");
  }
  if (::chdir(p.cwd.c_str()) != 0) Die(status_fd, p.fail_cwd);
  bool found = false;
  for (const std::string& candidate : p.program_candidates) {
    struct stat program;
    if (::stat(candidate.c_str(), &program) == 0 && S_ISREG(program.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      found = true;
      break;
    }
  }
  if (!found) Die(status_fd, p.fail_lookup, ENOENT);
  // Ready: the parent returns from Create; the process waits for Start.
  if (::write(status_fd, "R", 1) != 1) ::_exit(127);
  char go;
  ssize_t n;
  do {
    n = ::read(start_fd, &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) ::_exit(127);  // the agent let go without starting it
  if (p.seccomp && p.no_new_privs && !LoadFilter(p)) Die(status_fd, "load the seccomp filter");
  environ = const_cast<char**>(p.envp.data());  // execvp searches the spec's PATH
  ::execvp(p.argv[0], const_cast<char* const*>(p.argv.data()));
  Die(status_fd, p.fail_exec);
}

}  // namespace

absl::StatusOr<Container> Container::Create(const ContainerConfig& config) {
  RETURN_IF_ERROR(config.spec.Validate());
  ASSIGN_OR_RETURN(auto plan, MakePlan(config));
  return Launch(*plan, config);
}

absl::StatusOr<Container> Container::Exec(const ContainerConfig& given) const {
  RETURN_IF_ERROR(given.spec.Validate());
  // An exec joins every namespace of its container through the init's pidfd, whichever way the
  // init got it. A path in the spec (the host's /proc/<pid>/ns/*, as an engine writes it for a
  // pod member or a CNI network) names nothing here and is not opened.
  ContainerConfig config = given;
  for (oci::Namespace& ns : config.spec.linux.namespaces) ns.path.clear();
  ASSIGN_OR_RETURN(auto plan, MakePlan(config));
  plan->join_pidfd = init_.pidfd();
  plan->unshare_cgroup = false;  // joined with the rest
  plan->join_flags = plan->clone_flags &
                     (CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | CLONE_NEWCGROUP);
  ASSIGN_OR_RETURN(Container process, Launch(*plan, config));
  RETURN_IF_ERROR(process.Start());
  return process;
}

absl::StatusOr<Container> Container::Launch(const Plan& plan_ref, const ContainerConfig& config) {
  const Plan* plan = &plan_ref;
  ASSIGN_OR_RETURN(Pipe status, MakePipe());
  ASSIGN_OR_RETURN(Pipe start, MakePipe());
  Fd console_ours, console_theirs;
  if (config.terminal) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      return ErrnoError("socketpair for the terminal");
    }
    console_ours = Fd(sv[0]);
    console_theirs = Fd(sv[1]);
  }
  int pidfd = -1;
  clone_args args{};
  uint64_t flags = static_cast<uint64_t>(plan->join_pidfd >= 0 ? 0 : plan->clone_flags);
  if (plan->unshare_cgroup) flags &= ~static_cast<uint64_t>(CLONE_NEWCGROUP);
  if (config.cgroup_fd >= 0) {
    args.cgroup = static_cast<uint64_t>(config.cgroup_fd);
    flags |= CLONE_INTO_CGROUP;
  }
  args.flags = flags | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  auto clone = [&]() -> long {
    long pid = ::syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) {
      status.read.reset();
      start.write.reset();
      RunChild(*plan, config.stdio, status.write.get(), start.read.get(),
               console_theirs.valid() ? console_theirs.get() : -1);
    }
    return pid;
  };
  long pid = -1;
  int clone_errno = 0;
  if (plan->join_pidfd >= 0) {
    // A process joins a pid namespace only at its birth: clone on a thread of our own whose
    // children go into the init's pid namespace (setns with a pidfd), so the rest of the agent
    // keeps its own.
    std::thread([&] {
      if (::setns(plan->join_pidfd, CLONE_NEWPID) != 0) {
        clone_errno = errno;
        return;
      }
      pid = clone();
      if (pid < 0) clone_errno = errno;
    }).join();
  } else {
    pid = clone();
    if (pid < 0) clone_errno = errno;
  }
  if (pid < 0) return ErrnoError(clone_errno, "clone3 a process of container " + config.id);
  status.write.reset();
  start.read.reset();
  console_theirs.reset();
  Child init(static_cast<pid_t>(pid), Fd(pidfd));
  std::string report;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(status.read.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    report.append(buf, static_cast<size_t>(n));
    if (report == "R") break;
  }
  if (report != "R") {
    absl::StatusOr<ExitStatus> end = init.Wait(absl::Now() + absl::Seconds(5));
    if (report.empty()) {
      report = "its init died while being set up";
      if (end.ok()) {
        absl::StrAppend(&report, end->exited ? " (exit status " : " (killed by signal ",
                        end->exited ? end->code : end->signal, ")");
      }
    }
    return absl::FailedPreconditionError(absl::StrCat("container ", config.id, ": ", report));
  }
  // The child sent its terminal's master before it reported ready.
  Fd master;
  if (console_ours.valid()) {
    absl::StatusOr<Fd> received = ReceiveFd(console_ours.get());
    if (!received.ok()) {
      return absl::InternalError(
          absl::StrCat("container ", config.id, ": no terminal master from its init"));
    }
    master = *std::move(received);
  }
  return Container(std::move(init), std::move(start.write), std::move(master));
}

absl::Status Container::Start() {
  if (!start_.valid()) return absl::FailedPreconditionError("the container was started already");
  ssize_t n = ::write(start_.get(), "s", 1);
  start_.reset();
  if (n != 1) return ErrnoError("start the container");
  return absl::OkStatus();
}

}  // namespace runvm::agent
