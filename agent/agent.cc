#include "agent/agent.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/deadline.h"
#include "base/fd.h"
#include "base/file.h"
#include "base/process.h"
#include "base/status.h"

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
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, PollTimeoutMs(deadline)) <= 0 || (p.revents & (POLLHUP | POLLERR))) {
      return false;
    }
  }
  return true;
}

}  // namespace

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
