#include "hypervisor/qmp/client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/deadline.h"
#include "base/status.h"
#include "base/unix_socket.h"

namespace runvm::qmp {
namespace {

constexpr char kClassPayload[] = "type.runvm.dev/qmp.error_class";

absl::StatusCode CodeForClass(absl::string_view cls) {
  if (cls == "DeviceNotFound") return absl::StatusCode::kNotFound;
  if (cls == "CommandNotFound") return absl::StatusCode::kUnimplemented;
  return absl::StatusCode::kFailedPrecondition;
}

absl::Status ErrorReplyStatus(absl::string_view command, const Reply& r) {
  absl::Status st(CodeForClass(r.error_class),
                  absl::StrCat("QMP ", command, ": ", r.error_class, ": ", r.error_desc));
  st.SetPayload(kClassPayload, absl::Cord(r.error_class));
  return st;
}

std::string Seconds(absl::Duration d) {
  return absl::FormatDuration(absl::Trunc(d, absl::Milliseconds(1)));
}

}  // namespace

std::optional<std::string> ErrorClass(const absl::Status& status) {
  auto c = status.GetPayload(kClassPayload);
  if (!c) return std::nullopt;
  return std::string(*c);
}

Client::Client(Fd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}
Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const std::string& socket_path,
                                                        absl::Time deadline,
                                                        const ConnectOptions& options) {
  absl::StatusOr<Fd> fd = ConnectUnix(socket_path);
  if (!fd.ok()) return Annotate(fd.status(), "QMP");
  return Adopt(std::move(*fd), deadline, options, socket_path);
}

absl::StatusOr<std::unique_ptr<Client>> Client::Adopt(Fd fd, absl::Time deadline,
                                                      const ConnectOptions& options,
                                                      std::string name) {
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoError("make " + name + " non-blocking");
  }
  std::unique_ptr<Client> c(new Client(std::move(fd), std::move(name)));
  RETURN_IF_ERROR(c->Negotiate(deadline, options));
  return c;
}

absl::Status Client::Negotiate(absl::Time deadline, const ConnectOptions& options) {
  absl::Time start = absl::Now();
  absl::Status st = Pump(deadline, "its greeting", [&] { return greeted_; });
  if (absl::IsDeadlineExceeded(st)) {
    return Break(absl::DeadlineExceededError(
        absl::StrCat("no QMP greeting on ", name_, " within ", Seconds(deadline - start))));
  }
  RETURN_IF_ERROR(st);
  Json enable = Json::array();
  for (const std::string& cap : options.capabilities) {
    bool offered = false;
    for (const std::string& o : greeting_.capabilities) offered |= o == cap;
    if (!offered) {
      return absl::FailedPreconditionError(
          absl::StrCat("QMP capability \"", cap, "\" is not offered by ", name_,
                       " (offered: ", Json(greeting_.capabilities).dump(), ")"));
    }
    enable.push_back(cap);
  }
  Json args = enable.empty() ? Json::object() : Json{{"enable", enable}};
  return Call("qmp_capabilities", args, -1, deadline).status();
}

absl::Status Client::Break(absl::Status why) {
  if (health_.ok()) health_ = why;
  return why;
}

absl::StatusOr<Json> Client::Execute(absl::string_view command, const Json& args,
                                     absl::Time deadline) {
  return Call(command, args, -1, deadline);
}

absl::StatusOr<Json> Client::ExecuteWithFd(absl::string_view command, const Json& args, Fd fd,
                                           absl::Time deadline) {
  if (!fd.valid()) {
    return absl::InvalidArgumentError(absl::StrCat("QMP ", command, ": no descriptor to pass"));
  }
  return Call(command, args, fd.get(), deadline);  // `fd` closes when this returns
}

absl::StatusOr<Json> Client::Call(absl::string_view command, const Json& args, int fd,
                                  absl::Time deadline) {
  if (!health_.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("QMP ", command, " not sent: the session is unusable: ", health_.message()));
  }
  Json id = absl::StrCat("runvm-", next_id_++);
  absl::Time start = absl::Now();
  outstanding_id_ = id;
  reply_.reset();
  RETURN_IF_ERROR(Send(EncodeCommand(command, args, id), fd, deadline, command));
  std::string what = absl::StrCat("the reply to ", command);
  absl::Status st = Pump(deadline, what, [&] { return reply_.has_value(); });
  if (absl::IsDeadlineExceeded(st)) {
    return Break(absl::DeadlineExceededError(
        absl::StrCat("QMP ", command, ": no reply within ", Seconds(deadline - start),
                     " (the session is now unusable: a late reply could be misattributed)")));
  }
  RETURN_IF_ERROR(st);
  Reply r = std::move(*reply_);
  reply_.reset();
  if (!r.ok) return ErrorReplyStatus(command, r);
  return std::move(r.value);
}

absl::Status Client::Send(const std::string& bytes, int fd, absl::Time deadline,
                          absl::string_view what) {
  size_t sent = 0;
  bool fd_sent = fd < 0;
  while (sent < bytes.size()) {
    iovec iov{const_cast<char*>(bytes.data() + sent), bytes.size() - sent};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (!fd_sent) {
      std::memset(control, 0, sizeof control);
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      fd_sent = true;  // ancillary data travels with the first byte sent
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_.get(), POLLOUT, 0};
      int r = ::poll(&p, 1, PollTimeoutMs(deadline));
      if (r == 0) {
        return Break(absl::DeadlineExceededError(absl::StrCat(
            "QMP ", what, ": could not send within the deadline (QEMU is not reading)")));
      }
      continue;
    }
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      return Break(absl::UnavailableError(
          absl::StrCat("QEMU monitor closed (", name_, ") while sending ", what)));
    }
    return Break(ErrnoError(absl::StrCat("send QMP ", what)));
  }
  return absl::OkStatus();
}

template <typename Done>
absl::Status Client::Pump(absl::Time deadline, absl::string_view what, Done done) {
  for (;;) {
    // Dispatch complete messages already buffered before reading more.
    for (;;) {
      if (!health_.ok()) return health_;
      if (done()) return absl::OkStatus();
      absl::StatusOr<std::optional<std::string>> line = framer_.Next();
      if (!line.ok()) {
        return Break(absl::InternalError(
            absl::StrCat("QMP session broken (", name_, "): ", line.status().message())));
      }
      if (!line->has_value()) break;
      absl::StatusOr<Message> m = ParseMessage(**line);
      if (!m.ok()) {
        return Break(absl::InternalError(
            absl::StrCat("QMP session broken (", name_, "): ", m.status().message())));
      }
      RETURN_IF_ERROR(Dispatch(std::move(*m)));
    }
    bool timed_out = false;
    RETURN_IF_ERROR(ReadOnce(deadline, what, &timed_out));
    if (timed_out) return absl::DeadlineExceededError(absl::StrCat("waiting for ", what));
  }
}

absl::Status Client::ReadOnce(absl::Time deadline, absl::string_view what, bool* timed_out) {
  pollfd p{fd_.get(), POLLIN, 0};
  int r = ::poll(&p, 1, PollTimeoutMs(deadline));
  if (r < 0) {
    if (errno == EINTR) return absl::OkStatus();
    return Break(ErrnoError("poll " + name_));
  }
  if (r == 0) {
    *timed_out = true;
    return absl::OkStatus();
  }
  char buf[65536];
  ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
  if (n > 0) {
    framer_.Append(buf, static_cast<size_t>(n));
    return absl::OkStatus();
  }
  if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return absl::OkStatus();
  if (n == 0 || errno == ECONNRESET) {
    std::string cut = framer_.pending() > 0
                          ? absl::StrCat(" (", framer_.pending(), " bytes of a message cut off)")
                          : "";
    return Break(absl::UnavailableError(
        absl::StrCat("QEMU monitor closed (", name_, ") while waiting for ", what, cut)));
  }
  return Break(ErrnoError("read " + name_));
}

absl::Status Client::Dispatch(Message message) {
  if (auto* g = std::get_if<Greeting>(&message)) {
    if (greeted_)
      return Break(
          absl::InternalError(absl::StrCat("QMP session broken (", name_, "): a second greeting")));
    greeting_ = std::move(*g);
    greeted_ = true;
    return absl::OkStatus();
  }
  if (!greeted_) {
    return Break(absl::InternalError(
        absl::StrCat("QMP session broken (", name_, "): a message before the greeting")));
  }
  if (auto* r = std::get_if<Reply>(&message)) {
    if (!outstanding_id_) {
      return Break(absl::InternalError(absl::StrCat("QMP session broken (", name_,
                                                    "): a reply with no command outstanding (id ",
                                                    r->id.dump(), ")")));
    }
    if (r->id != *outstanding_id_) {
      return Break(absl::InternalError(
          absl::StrCat("QMP session broken (", name_, "): reply id ", r->id.dump(),
                       " does not match the outstanding command's id ", outstanding_id_->dump())));
    }
    outstanding_id_.reset();
    reply_ = std::move(*r);
    return absl::OkStatus();
  }
  Event ev = std::move(std::get<Event>(message));
  for (auto& [id, w] : waiters_) {
    if (!w.event && w.name == ev.name && JsonContains(ev.data, w.match)) {
      w.event = std::move(ev);
      return absl::OkStatus();
    }
  }
  if (events_.size() >= kMaxQueuedEvents) {
    events_.pop_front();
    ++dropped_events_;
  }
  events_.push_back(std::move(ev));
  return absl::OkStatus();
}

Client::WaiterId Client::ExpectEvent(absl::string_view name, Json data_subset) {
  WaiterId id = next_waiter_++;
  waiters_[id] = Waiter{std::string(name), std::move(data_subset), std::nullopt};
  return id;
}

void Client::CancelEvent(WaiterId id) { waiters_.erase(id); }

absl::StatusOr<Event> Client::WaitEvent(WaiterId id, absl::Time deadline) {
  ASSIGN_OR_RETURN(Fired fired, WaitAnyEvent({id}, deadline));
  return std::move(fired.event);
}

absl::StatusOr<Client::Fired> Client::WaitAnyEvent(const std::vector<WaiterId>& ids,
                                                   absl::Time deadline) {
  std::vector<std::string> names;
  for (WaiterId id : ids) {
    auto it = waiters_.find(id);
    if (it == waiters_.end()) {
      return absl::NotFoundError(absl::StrCat("QMP event waiter ", id, " is not registered"));
    }
    names.push_back(absl::StrCat(it->second.name, " matching ", it->second.match.dump()));
  }
  std::string what = absl::StrCat("event ", absl::StrJoin(names, " or "));
  auto fired = [&]() -> std::optional<WaiterId> {
    for (WaiterId id : ids) {
      if (waiters_.at(id).event) return id;
    }
    return std::nullopt;
  };
  if (!fired()) {
    if (!health_.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot wait for ", what, ": the session is unusable: ", health_.message()));
    }
    absl::Time start = absl::Now();
    absl::Status st = Pump(deadline, what, [&] { return fired().has_value(); });
    if (absl::IsDeadlineExceeded(st)) {
      return absl::DeadlineExceededError(
          absl::StrCat("no ", what, " within ", Seconds(deadline - start)));
    }
    RETURN_IF_ERROR(st);
  }
  WaiterId id = *fired();
  auto it = waiters_.find(id);
  Fired out{id, std::move(*it->second.event)};
  waiters_.erase(it);
  return out;
}

absl::Status Client::PollEvents(absl::Time deadline) {
  absl::Status st = Pump(deadline, "events", [&] { return !events_.empty(); });
  return absl::IsDeadlineExceeded(st) ? absl::OkStatus() : st;
}

std::vector<Event> Client::TakeEvents() {
  std::vector<Event> out(std::make_move_iterator(events_.begin()),
                         std::make_move_iterator(events_.end()));
  events_.clear();
  return out;
}

absl::Status Client::GetFd(absl::string_view name, Fd fd, absl::Time deadline) {
  return ExecuteWithFd("getfd", {{"fdname", std::string(name)}}, std::move(fd), deadline).status();
}

absl::Status Client::CloseFd(absl::string_view name, absl::Time deadline) {
  return Execute("closefd", {{"fdname", std::string(name)}}, deadline).status();
}

absl::StatusOr<Client::AddedFd> Client::AddFd(Fd fd, std::optional<int64_t> fdset_id,
                                              absl::string_view opaque, absl::Time deadline) {
  Json args = Json::object();
  if (fdset_id) args["fdset-id"] = *fdset_id;
  if (!opaque.empty()) args["opaque"] = std::string(opaque);
  ASSIGN_OR_RETURN(Json r, ExecuteWithFd("add-fd", args, std::move(fd), deadline));
  if (!r.is_object() || !r.contains("fdset-id") || !r["fdset-id"].is_number_integer() ||
      !r.contains("fd") || !r["fd"].is_number_integer()) {
    return absl::InternalError(absl::StrCat("QMP add-fd: unexpected reply ", r.dump()));
  }
  return AddedFd{r["fdset-id"].get<int64_t>(), r["fd"].get<int64_t>()};
}

absl::Status Client::RemoveFd(int64_t fdset_id, std::optional<int64_t> fd, absl::Time deadline) {
  Json args = {{"fdset-id", fdset_id}};
  if (fd) args["fd"] = *fd;
  return Execute("remove-fd", args, deadline).status();
}

}  // namespace runvm::qmp
