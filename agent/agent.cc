#include "agent/agent.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <dirent.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/container.h"
#include "agent/network.h"
#include "base/deadline.h"
#include "base/fd.h"
#include "base/file.h"
#include "base/process.h"
#include "base/status.h"
#include "proto/io_frame.h"

namespace runvm::agent {
namespace {

using agent_proto::Message;
using Json = nlohmann::json;

// How long a response may wait for a slow host to read it before the host counts as gone.
constexpr absl::Duration kWriteTimeout = absl::Seconds(10);

std::string KernelRelease() {
  utsname u{};
  return ::uname(&u) == 0 ? u.release : "";
}

Message ErrorReply(const Message& request, absl::string_view message) {
  return {.type = agent_proto::kError,
          .id = request.id,
          .fields =
              agent_proto::ToFields(agent_proto::Error{absl::StrCat(request.type, ": ", message)})};
}

// "0-1,3" -> 3.
int CountCpus(absl::string_view list) {
  int n = 0;
  for (absl::string_view part :
       absl::StrSplit(absl::StripAsciiWhitespace(list), ',', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> range = absl::StrSplit(part, '-');
    int lo = 0, hi = 0;
    if (!absl::SimpleAtoi(range.first, &lo)) continue;
    hi = lo;
    if (!range.second.empty() && !absl::SimpleAtoi(range.second, &hi)) continue;
    n += hi - lo + 1;
  }
  return n;
}

absl::StatusOr<agent_proto::GuestDetails> Details(const AgentOptions& o) {
  agent_proto::GuestDetails d;
  d.kernel = KernelRelease();
  ASSIGN_OR_RETURN(std::string block,
                   ReadFile(o.sysfs + "/devices/system/memory/block_size_bytes", 64));
  if (!absl::SimpleHexAtoi(absl::StripAsciiWhitespace(block), &d.memory_block_size_bytes)) {
    return absl::InternalError(absl::StrCat("block_size_bytes holds \"", block, "\""));
  }
  ASSIGN_OR_RETURN(std::string online, ReadFile(o.sysfs + "/devices/system/cpu/online", 4096));
  d.online_cpus = CountCpus(online);
  ASSIGN_OR_RETURN(std::string meminfo, ReadFile(o.procfs + "/meminfo", 1 << 16));
  for (absl::string_view line : absl::StrSplit(meminfo, '\n')) {
    if (!absl::ConsumePrefix(&line, "MemTotal:")) continue;
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumeSuffix(&line, " kB");
    (void)absl::SimpleAtoi(line, &d.mem_total_kib);
  }
  return d;
}

// Runs argv with its output collected (bounded), killed at the deadline.
absl::StatusOr<agent_proto::RunResult> RunCommand(const agent_proto::RunRequest& r,
                                                  size_t max_output) {
  ASSIGN_OR_RETURN(Pipe out, MakePipe());
  ASSIGN_OR_RETURN(Pipe err, MakePipe());
  SpawnOptions o{.argv = r.argv, .cwd = r.cwd.empty() ? "/" : r.cwd};
  if (!r.env.empty()) o.env = r.env;
  o.fds = {{1, out.write.get()}, {2, err.write.get()}};
  if (::access(o.cwd.c_str(), X_OK) != 0) return ErrnoError("cwd " + o.cwd);
  ASSIGN_OR_RETURN(Child child, Spawn(o));
  out.write.reset();
  err.write.reset();
  agent_proto::RunResult result;
  const absl::Time deadline = absl::Now() + absl::Milliseconds(r.timeout_ms);
  pollfd p[2] = {{out.read.get(), POLLIN, 0}, {err.read.get(), POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open = 2;
  while (open > 0) {
    int n = ::poll(p, 2, PollTimeoutMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      result.timed_out = true;
      (void)child.Signal(SIGKILL);
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (p[i].fd < 0 || p[i].revents == 0) continue;
      char buf[8192];
      ssize_t got = ::read(p[i].fd, buf, sizeof buf);
      if (got > 0) {
        size_t room = max_output - std::min(max_output, sinks[i]->size());
        sinks[i]->append(buf, std::min(room, static_cast<size_t>(got)));
      } else if (got == 0 || errno != EINTR) {
        p[i].fd = -1;
        --open;
      }
    }
  }
  ASSIGN_OR_RETURN(ExitStatus exit, child.Wait(absl::Now() + absl::Seconds(5)));
  result.exit_status = exit.ShellCode();
  return result;
}

// Writes all of `data`; false when the host does not take it in time or is gone.
bool WriteAll(int fd, absl::string_view data) {
  const absl::Time deadline = absl::Now() + kWriteTimeout;
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return false;
    // A port reports POLLHUP while the guest has not yet seen the host connect: the host's
    // request (data queue) can overtake its port-open notice (control queue). Wait for the
    // notice rather than drop the answer; if the host is really gone, the next one gets the
    // bytes and skips them by their id.
    pollfd p{fd, POLLOUT, 0};
    int r = ::poll(&p, 1, PollTimeoutMs(deadline));
    if (r <= 0 || (p.revents & POLLERR)) return false;
    if (p.revents & POLLHUP) absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

// The virtio-serial port of that name, waited for: its node appears a few ms after the hotplug
// and its name with a later uevent.
absl::StatusOr<Fd> OpenVirtioPort(const std::string& name) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  do {
    if (DIR* d = ::opendir("/sys/class/virtio-ports")) {
      while (dirent* e = ::readdir(d)) {
        absl::StatusOr<std::string> n =
            ReadFile(absl::StrCat("/sys/class/virtio-ports/", e->d_name, "/name"), 256);
        if (n.ok() && absl::StripAsciiWhitespace(*n) == name) {
          std::string dev = absl::StrCat("/dev/", e->d_name);
          ::closedir(d);
          return OpenFile(dev, O_RDWR | O_CLOEXEC);
        }
      }
      ::closedir(d);
    }
    absl::SleepFor(absl::Milliseconds(10));
  } while (absl::Now() < deadline);
  return absl::NotFoundError(absl::StrCat("no virtio-serial port named ", name));
}

// Writes all of `data` to a non-blocking port whose host may not be connected yet: waits for it
// (the bytes stay in the process's pipes meanwhile) until `stop`.
bool WriteToPort(int fd, absl::string_view data, const std::atomic<bool>& stop) {
  while (!data.empty()) {
    if (stop) return false;
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EPIPE && errno != ENOTCONN) return false;
    pollfd p{fd, POLLOUT, 0};
    int r = ::poll(&p, 1, 100);
    if (r > 0 && (p.revents & POLLHUP)) absl::SleepFor(absl::Milliseconds(100));  // no host yet
  }
  return true;
}

// The processes in the pid namespace of `init` (init included), by the guest's pids; just init
// when the container shares the agent's own pid namespace.
absl::StatusOr<std::vector<pid_t>> PidsInNamespaceOf(pid_t init) {
  struct stat ns, own;
  if (::stat(absl::StrCat("/proc/", init, "/ns/pid").c_str(), &ns) != 0) {
    return ErrnoError(absl::StrCat("pid namespace of ", init));
  }
  if (::stat("/proc/self/ns/pid", &own) == 0 && own.st_ino == ns.st_ino &&
      own.st_dev == ns.st_dev) {
    return std::vector<pid_t>{init};
  }
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return ErrnoError("opendir /proc");
  std::vector<pid_t> pids;
  while (dirent* e = ::readdir(proc)) {
    pid_t pid = 0;
    struct stat st;
    if (absl::SimpleAtoi(e->d_name, &pid) &&
        ::stat(absl::StrCat("/proc/", pid, "/ns/pid").c_str(), &st) == 0 &&
        st.st_ino == ns.st_ino && st.st_dev == ns.st_dev) {
      pids.push_back(pid);
    }
  }
  ::closedir(proc);
  std::sort(pids.begin(), pids.end());
  return pids;
}

// Signals every process of the container, as runc's kill --all does.
absl::Status SignalNamespace(pid_t init, int sig) {
  ASSIGN_OR_RETURN(std::vector<pid_t> pids, PidsInNamespaceOf(init));
  for (pid_t pid : pids) (void)::kill(pid, sig);
  return absl::OkStatus();
}

// A process's command line, its arguments joined by spaces.
std::string CommandOf(pid_t pid) {
  absl::StatusOr<std::string> raw = ReadFile(absl::StrCat("/proc/", pid, "/cmdline"), 4096);
  if (!raw.ok()) return "";
  std::string cmd = *raw;
  while (!cmd.empty() && cmd.back() == '\0') cmd.pop_back();
  std::replace(cmd.begin(), cmd.end(), '\0', ' ');
  return cmd;
}

// A terminal's name from /proc/<pid>/stat's tty_nr ("pts/3", "ttyS0"); empty for none.
std::string TtyName(uint64_t tty_nr) {
  const uint64_t major = (tty_nr >> 8) & 0xfff;
  const uint64_t minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
  if (major >= 136 && major <= 143) return absl::StrCat("pts/", (major - 136) * 256 + minor);
  if (major == 4)
    return minor >= 64 ? absl::StrCat("ttyS", minor - 64) : absl::StrCat("tty", minor);
  if (major == 5 && minor == 1) return "console";
  return tty_nr == 0 ? "" : absl::StrCat(major, ",", minor);
}

// What turns /proc/<pid>/stat's clock ticks into times: read once per listing.
struct Clock {
  int64_t hz = 100;  // ticks per second
  int64_t boot = 0;  // the boot time, seconds since the epoch (/proc/stat btime)
};

Clock ReadClock() {
  Clock c{.hz = std::max<long>(::sysconf(_SC_CLK_TCK), 1)};
  if (absl::StatusOr<std::string> all = ReadFile("/proc/stat", 1 << 16); all.ok()) {
    for (absl::string_view line : absl::StrSplit(*all, '\n')) {
      if (absl::ConsumePrefix(&line, "btime ")) (void)absl::SimpleAtoi(line, &c.boot);
    }
  }
  return c;
}

// What ps -ef shows of a process, from /proc (a process that has gone keeps the defaults).
agent_proto::ProcessEntry DescribeProcess(pid_t pid, const Clock& clock) {
  agent_proto::ProcessEntry e{.pid = pid, .command = CommandOf(pid)};
  absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"), 4096);
  const size_t paren = stat.ok() ? stat->rfind(')') : std::string::npos;
  if (paren != std::string::npos) {
    // Fields after the command, from field 3 (state): ppid is 4, tty_nr 7, utime 14, stime 15,
    // starttime 22 (clock ticks after boot).
    std::vector<std::string> f = absl::StrSplit(stat->substr(paren + 2), ' ');
    auto field = [&](size_t n) {
      uint64_t v = 0;
      return n - 3 < f.size() && absl::SimpleAtoi(f[n - 3], &v) ? v : 0;
    };
    e.ppid = static_cast<int64_t>(field(4));
    e.tty = TtyName(field(7));
    e.cpu_seconds = static_cast<int64_t>(field(14) + field(15)) / clock.hz;
    e.start_unix = clock.boot + static_cast<int64_t>(field(22)) / clock.hz;
  }
  if (absl::StatusOr<std::string> status = ReadFile(absl::StrCat("/proc/", pid, "/status"), 8192);
      status.ok()) {
    for (absl::string_view line : absl::StrSplit(*status, '\n')) {
      if (!absl::ConsumePrefix(&line, "Uid:")) continue;
      std::vector<absl::string_view> ids = absl::StrSplit(line, '\t', absl::SkipEmpty());
      if (!ids.empty()) (void)absl::SimpleAtoi(ids[0], &e.uid);
    }
  }
  return e;
}

}  // namespace

// A created container with its stdio relays.
class RunningContainer {
 public:
  // With `terminal`, stdout_r is the terminal's master (stderr_r is unused) and resize frames
  // set its size.
  RunningContainer(Container c, Fd port, Fd stdin_w, Fd stdout_r, Fd stderr_r, bool terminal)
      : container_(std::move(c)),
        port_(std::move(port)),
        stdin_w_(std::move(stdin_w)),
        stdout_r_(std::move(stdout_r)),
        stderr_r_(std::move(stderr_r)),
        terminal_(terminal) {
    output_ = std::thread([this] { RelayOutput(); });
    input_ = std::thread([this] { RelayInput(); });
  }
  ~RunningContainer() {
    if (!Exited()) (void)container_.Signal(SIGKILL);
    // The exit frame is written if a host takes it within a moment; then the relays stop.
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(2), [&] { return output_done_; });
    }
    stop_ = true;
    output_.join();
    input_.join();
  }
  Container& container() { return container_; }
  pid_t pid() const { return container_.pid(); }
  // What its cgroup was given (linux.resources, then every update merged in).
  oci::Resources resources;
  bool Exited() {
    std::lock_guard<std::mutex> lock(mu_);
    return exit_status_.has_value();
  }
  // The exit status once the process ended, waiting up to `timeout`.
  std::optional<int> WaitExit(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                 [&] { return exit_status_.has_value(); });
    return exit_status_;
  }

 private:
  void RelayOutput() {
    pollfd p[2] = {{stdout_r_.get(), POLLIN, 0}, {stderr_r_.get(), POLLIN, 0}};
    const io_frame::Kind kinds[2] = {io_frame::kStdout, io_frame::kStderr};
    int open = stderr_r_.valid() ? 2 : 1;  // a terminal's master reads EIO once the process ends
    bool host = true;
    while (open > 0 && !stop_) {
      if (::poll(p, 2, 100) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if (p[i].fd < 0 || p[i].revents == 0) continue;
        char buf[16384];
        ssize_t n = ::read(p[i].fd, buf, sizeof buf);
        if (n > 0) {
          host =
              host && WriteToPort(port_.get(), io_frame::Encode(kinds[i], {buf, size_t(n)}), stop_);
        } else if (n == 0 || errno != EINTR) {
          p[i].fd = -1;
          --open;
        }
      }
    }
    absl::StatusOr<ExitStatus> exit = container_.Wait(absl::InfiniteFuture());
    const int status = exit.ok() ? exit->ShellCode() : 255;
    {
      std::lock_guard<std::mutex> lock(mu_);
      exit_status_ = status;
    }
    cv_.notify_all();
    if (host) (void)WriteToPort(port_.get(), io_frame::EncodeExit(status), stop_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      output_done_ = true;
    }
    cv_.notify_all();
  }

  void RelayInput() {
    io_frame::Reader reader;
    while (!stop_) {
      pollfd p{port_.get(), POLLIN, 0};
      int r = ::poll(&p, 1, 100);
      if (r <= 0) continue;
      char buf[16384];
      ssize_t n = (p.revents & POLLIN) ? ::read(port_.get(), buf, sizeof buf) : 0;
      if (n <= 0) {
        absl::SleepFor(absl::Milliseconds(100));  // no host right now
        continue;
      }
      reader.Feed({buf, static_cast<size_t>(n)});
      for (;;) {
        absl::StatusOr<std::optional<io_frame::Frame>> f = reader.Next();
        if (!f.ok()) {
          stdin_w_.reset();
          return;  // a broken stream: the process's stdin ends
        }
        if (!f->has_value()) break;
        if ((*f)->kind == io_frame::kStdinClosed) {
          stdin_w_.reset();
        } else if ((*f)->kind == io_frame::kResize && terminal_) {
          absl::StatusOr<io_frame::WindowSize> size = io_frame::WindowSizeOf(**f);
          if (size.ok()) {
            winsize ws{.ws_row = size->rows, .ws_col = size->columns};
            (void)::ioctl(stdout_r_.get(), TIOCSWINSZ, &ws);
          }
        } else if ((*f)->kind == io_frame::kSignal) {
          // A signal the shim received (runc's forwarding): to the process, as `kill` without
          // --all sends it.
          absl::StatusOr<int> sig = io_frame::SignalOf(**f);
          if (sig.ok()) (void)container_.Signal(*sig);
        } else if ((*f)->kind == io_frame::kStdin && stdin_w_.valid()) {
          std::atomic<bool> never(false);
          if (!WriteToPort(stdin_w_.get(), (*f)->data, never)) stdin_w_.reset();
        }
      }
    }
  }

  Container container_;
  Fd port_, stdin_w_, stdout_r_, stderr_r_;
  const bool terminal_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<int> exit_status_;
  bool output_done_ = false;
  std::thread output_, input_;
};

Agent::Agent(AgentOptions options) : options_(std::move(options)) {
  if (!options_.open_port) options_.open_port = OpenVirtioPort;
}

Agent::~Agent() = default;

Message Agent::HandleContainer(const Message& request) {
  using namespace agent_proto;
  auto find = [&](const std::string& id) -> RunningContainer* {
    auto it = containers_.find(id);
    return it == containers_.end() ? nullptr : it->second.get();
  };
  auto unknown = [&](const std::string& id) {
    return ErrorReply(request, absl::StrCat("container ", id, " does not exist"));
  };
  if (request.type == kCreateContainer || request.type == kExecProcess) {
    absl::StatusOr<CreateContainer> c = CreateContainerFrom(request);
    if (!c.ok()) return ErrorReply(request, c.status().message());
    const bool exec = request.type == kExecProcess;
    const size_t slash = c->id.find('/');
    if (exec != (slash != std::string::npos)) {
      return ErrorReply(request, absl::StrCat("\"", c->id, "\": an exec is <container>/<exec id>, ",
                                              "a container id has no slash"));
    }
    if (find(c->id) != nullptr) {
      return ErrorReply(request,
                        absl::StrCat(exec ? "process " : "container ", c->id, " already exists"));
    }
    RunningContainer* init = nullptr;
    if (exec) {
      const std::string cid = c->id.substr(0, slash);
      init = find(cid);
      if (init == nullptr) return unknown(cid);
      if (init->Exited()) {
        return ErrorReply(request, absl::StrCat("container ", cid, " is not running"));
      }
    }
    absl::StatusOr<oci::Spec> spec = oci::ParseSpec(c->spec_json);
    if (!spec.ok()) return ErrorReply(request, spec.status().message());
    absl::StatusOr<Fd> port = options_.open_port(c->stdio_port);
    if (!port.ok()) return ErrorReply(request, port.status().message());
    const int flags = ::fcntl(port->get(), F_GETFL);
    ::fcntl(port->get(), F_SETFL, flags | O_NONBLOCK);
    // The process's stdio: three pipes, or a terminal whose master the relays use both ways.
    Fd stdin_w, stdout_r, stderr_r;
    std::array<Fd, 3> theirs;
    if (!spec->process.terminal) {
      absl::StatusOr<Pipe> in = MakePipe(), out = MakePipe(), err = MakePipe();
      if (!in.ok() || !out.ok() || !err.ok()) return ErrorReply(request, "pipes");
      theirs = {std::move(in->read), std::move(out->write), std::move(err->write)};
      stdin_w = std::move(in->write);
      stdout_r = std::move(out->read);
      stderr_r = std::move(err->read);
    }
    // Born in the container's cgroup: a new one for a container, its container's for an exec.
    Fd cgroup;
    const oci::Resources resources = spec->linux.resources.value_or(oci::Resources{});
    if (!options_.cgroup_root.empty()) {
      absl::StatusOr<GuestCgroups*> cg = Cgroups();
      if (!cg.ok()) return ErrorReply(request, cg.status().message());
      absl::StatusOr<Fd> dir =
          exec ? OpenFile((*cg)->Dir(c->id.substr(0, slash)), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
               : (*cg)->Create(c->id, resources);
      if (!dir.ok()) return ErrorReply(request, dir.status().message());
      cgroup = *std::move(dir);
    }
    const ContainerConfig config{.id = c->id,
                                 .rootfs = c->rootfs,
                                 .spec = *spec,
                                 .stdio = {theirs[0].get(), theirs[1].get(), theirs[2].get()},
                                 .terminal = spec->process.terminal,
                                 .cgroup_fd = cgroup.valid() ? cgroup.get() : -1};
    absl::StatusOr<Container> created =
        exec ? init->container().Exec(config) : Container::Create(config);
    if (!created.ok()) {
      if (!exec && cgroups_) (void)cgroups_->Remove(c->id, absl::Now() + absl::Seconds(5));
      return ErrorReply(request, created.status().message());
    }
    if (spec->process.terminal) {
      stdout_r = created->TakeTerminalMaster();
      stdin_w = Fd(::fcntl(stdout_r.get(), F_DUPFD_CLOEXEC, 3));
    }
    const pid_t pid = created->pid();
    auto& running = containers_[c->id] = std::make_unique<RunningContainer>(
        *std::move(created), *std::move(port), std::move(stdin_w), std::move(stdout_r),
        std::move(stderr_r), spec->process.terminal);
    running->resources = resources;
    return {.type = request.type, .id = request.id, .fields = ToFields(Created{pid})};
  }
  if (request.type == kProcesses) {
    absl::StatusOr<ContainerRef> ref = ContainerRefFrom(request);
    if (!ref.ok()) return ErrorReply(request, ref.status().message());
    RunningContainer* rc = find(ref->id);
    if (rc == nullptr) return unknown(ref->id);
    if (rc->Exited()) {
      return ErrorReply(request, absl::StrCat("container ", ref->id, " is not running"));
    }
    absl::StatusOr<std::vector<pid_t>> pids = PidsInNamespaceOf(rc->pid());
    if (!pids.ok()) return ErrorReply(request, pids.status().message());
    ProcessList list;
    const Clock clock = ReadClock();
    for (pid_t pid : *pids) list.processes.push_back(DescribeProcess(pid, clock));
    return {.type = kProcesses, .id = request.id, .fields = ToFields(list)};
  }
  if (request.type == kStartContainer || request.type == kDestroy) {
    absl::StatusOr<ContainerRef> ref = ContainerRefFrom(request);
    if (!ref.ok()) return ErrorReply(request, ref.status().message());
    RunningContainer* rc = find(ref->id);
    if (rc == nullptr) return unknown(ref->id);
    if (request.type == kDestroy) {
      // Its execs first (a container's id has no slash, so the prefix is exact); each is
      // killed if it runs, and its relays stopped.
      const std::string prefix = ref->id + "/";
      for (auto it = containers_.lower_bound(prefix);
           it != containers_.end() && absl::StartsWith(it->first, prefix);) {
        it = containers_.erase(it);
      }
      containers_.erase(ref->id);
      if (cgroups_) {
        if (absl::Status st = cgroups_->Remove(ref->id, absl::Now() + absl::Seconds(5)); !st.ok()) {
          return ErrorReply(request, st.message());
        }
      }
    } else if (absl::Status st = rc->container().Start(); !st.ok()) {
      return ErrorReply(request, st.message());
    }
    return {.type = request.type, .id = request.id};
  }
  if (request.type == kSignal) {
    absl::StatusOr<SignalRequest> sig = SignalRequestFrom(request);
    if (!sig.ok()) return ErrorReply(request, sig.status().message());
    RunningContainer* rc = find(sig->id);
    if (rc == nullptr) return unknown(sig->id);
    if (rc->Exited())
      return ErrorReply(request, absl::StrCat("container ", sig->id, " is not running"));
    absl::Status st = sig->all ? SignalNamespace(rc->container().pid(), sig->signal)
                               : rc->container().Signal(sig->signal);
    if (!st.ok()) {
      return ErrorReply(request, st.message());
    }
    return {.type = kSignal, .id = request.id};
  }
  absl::StatusOr<WaitRequest> wait = WaitRequestFrom(request);
  if (!wait.ok()) return ErrorReply(request, wait.status().message());
  RunningContainer* rc = find(wait->id);
  if (rc == nullptr) return unknown(wait->id);
  std::optional<int> status = rc->WaitExit(absl::Milliseconds(wait->timeout_ms));
  return {.type = kWait,
          .id = request.id,
          .fields = ToFields(WaitResult{status.has_value(), status.value_or(-1)})};
}

absl::StatusOr<GuestCgroups*> Agent::Cgroups() {
  if (options_.cgroup_root.empty()) {
    return absl::FailedPreconditionError("the agent runs without cgroups");
  }
  if (!cgroups_) {
    cgroups_.emplace(options_.cgroup_root);
    cgroups_status_ = cgroups_->Setup();
  }
  if (!cgroups_status_.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the guest's cgroups: ", cgroups_status_.message()));
  }
  return &*cgroups_;
}

Message Agent::HandleCgroup(const Message& request) {
  using namespace agent_proto;
  absl::StatusOr<std::string> id;
  std::optional<UpdateRequest> update;
  if (request.type == kUpdate) {
    absl::StatusOr<UpdateRequest> u = UpdateRequestFrom(request);
    if (!u.ok()) return ErrorReply(request, u.status().message());
    update = *std::move(u);
    id = update->id;
  } else {
    absl::StatusOr<ContainerRef> ref = ContainerRefFrom(request);
    if (!ref.ok()) return ErrorReply(request, ref.status().message());
    id = ref->id;
  }
  auto it = containers_.find(*id);
  if (it == containers_.end() || id->find('/') != std::string::npos) {
    return ErrorReply(request, absl::StrCat("container ", *id, " does not exist"));
  }
  RunningContainer& rc = *it->second;
  // An exited container's cgroup stays until it is destroyed: its last figures (an OOM kill
  // among them) can still be read.
  if (rc.Exited() && request.type != kStats) {
    return ErrorReply(request, absl::StrCat("container ", *id, " is not running"));
  }
  absl::StatusOr<GuestCgroups*> cg = Cgroups();
  if (!cg.ok()) return ErrorReply(request, cg.status().message());
  absl::Status st;
  if (request.type == kStats) {
    absl::StatusOr<CgroupStats> stats = (*cg)->Stats(*id);
    if (!stats.ok()) return ErrorReply(request, stats.status().message());
    return {.type = kStats, .id = request.id, .fields = ToFields(*stats)};
  }
  if (update) {
    absl::StatusOr<oci::Resources> r = oci::ParseResources(update->resources_json);
    if (!r.ok()) return ErrorReply(request, r.status().message());
    oci::Resources merged = rc.resources;
    merged.Merge(*r);
    if (st = merged.Validate(); st.ok()) st = (*cg)->Apply(*id, merged);
    if (st.ok()) rc.resources = std::move(merged);
  } else {
    st = (*cg)->Freeze(*id, request.type == kPause, absl::Now() + absl::Seconds(10));
  }
  if (!st.ok()) return ErrorReply(request, st.message());
  return {.type = request.type, .id = request.id};
}

Message Agent::Handle(const Message& request) {
  using namespace agent_proto;
  if (request.type == kHello) {
    absl::StatusOr<Hello> hello = HelloFrom(request);
    if (!hello.ok()) return ErrorReply(request, hello.status().message());
    return {.type = kHello,
            .id = request.id,
            .fields = ToFields(HelloReply{hello->epoch, KernelRelease(), options_.version})};
  }
  if (request.type == kHealth) return {.type = kHealth, .id = request.id};
  if (request.type == kGuestDetails) {
    absl::StatusOr<GuestDetails> d = Details(options_);
    if (!d.ok()) return ErrorReply(request, d.status().message());
    return {.type = kGuestDetails, .id = request.id, .fields = ToFields(*d)};
  }
  if (request.type == kRun) {
    absl::StatusOr<RunRequest> run = RunRequestFrom(request);
    if (!run.ok()) return ErrorReply(request, run.status().message());
    absl::StatusOr<RunResult> result = RunCommand(*run, options_.max_output_bytes);
    if (!result.ok()) return ErrorReply(request, result.status().message());
    return {.type = kRun, .id = request.id, .fields = ToFields(*result)};
  }
  if (request.type == kCreateContainer || request.type == kStartContainer ||
      request.type == kSignal || request.type == kWait || request.type == kDestroy ||
      request.type == kProcesses || request.type == kExecProcess) {
    return HandleContainer(request);
  }
  if (request.type == kPause || request.type == kResume || request.type == kUpdate ||
      request.type == kStats) {
    return HandleCgroup(request);
  }
  if (request.type == kConfigureNetwork) {
    absl::StatusOr<NetworkConfig> config = NetworkConfigFrom(request);
    absl::Status st = config.ok() ? ConfigureNetwork(*config) : config.status();
    if (!st.ok()) return ErrorReply(request, st.message());
    return {.type = kConfigureNetwork, .id = request.id};
  }
  return ErrorReply(request, "unknown request type");
}

bool Agent::Answer(int fd, agent_proto::FrameReader& reader, const char* data, size_t n) {
  reader.Feed({data, n});
  while (std::optional<Message> request = reader.Next()) {
    if (!WriteAll(fd, agent_proto::EncodeFrame(Handle(*request)))) return false;
  }
  return true;
}

absl::Status Agent::ServePort(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoError("agent port: O_NONBLOCK");
  }
  Fd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep.valid()) return ErrnoError("epoll_create1");
  epoll_event ev{.events = EPOLLIN | EPOLLET, .data = {.fd = fd}};
  if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return ErrnoError("epoll_ctl agent port");
  agent_proto::FrameReader reader;
  char buf[16384];
  for (;;) {
    // Drain whatever is there; 0 means no host right now, EAGAIN nothing more for now.
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        (void)Answer(fd, reader, buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN) return ErrnoError("read agent port");
      break;
    }
    epoll_event got;
    int r = ::epoll_wait(ep.get(), &got, 1, -1);
    if (r < 0 && errno != EINTR) return ErrnoError("epoll_wait agent port");
  }
}

absl::Status Agent::ServeStream(int fd) {
  agent_proto::FrameReader reader;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) return absl::OkStatus();
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read agent stream");
    }
    if (!Answer(fd, reader, buf, static_cast<size_t>(n))) return absl::OkStatus();
  }
}

}  // namespace runvm::agent
