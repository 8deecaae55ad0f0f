#include "tests/testing/fake_qmp_peer.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gtest/gtest.h"
#include "hypervisor/qmp/protocol.h"

namespace runvm::testing {
FakeQmpPeer::FakeQmpPeer() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    ADD_FAILURE() << "socketpair: " << std::strerror(errno);
    return;
  }
  mine_.reset(sv[0]);
  theirs_.reset(sv[1]);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) == 0) {
    stop_read_.reset(p[0]);
    stop_write_.reset(p[1]);
  }
}

FakeQmpPeer::~FakeQmpPeer() {
  if (!finished_) {
    for (const std::string& f : Finish()) ADD_FAILURE() << "FakeQmpPeer: " << f;
  }
}

Fd FakeQmpPeer::TakeClientEnd() { return std::move(theirs_); }

FakeQmpPeer::Json FakeQmpPeer::DefaultGreeting() {
  return {{"QMP",
           {{"version", {{"qemu", {{"micro", 22}, {"minor", 2}, {"major", 7}}}, {"package", ""}}},
            {"capabilities", Json::array({"oob"})}}}};
}

FakeQmpPeer& FakeQmpPeer::Greet(Json greeting) {
  std::string line = greeting.dump() + "\r\n";
  steps_.push_back({"greeting", [this, line] { return WriteAll(line); }});
  return *this;
}

FakeQmpPeer& FakeQmpPeer::Negotiate() { return Greet().ExpectCommand("qmp_capabilities").Reply(); }

FakeQmpPeer& FakeQmpPeer::ExpectCommand(std::string name, Json args_subset) {
  steps_.push_back({"expect " + name, [this, name, args_subset] {
                      Json cmd;
                      std::vector<int> fds;
                      if (!ReadCommand(&cmd, &fds)) {
                        Fail("expected command " + name + ", but the client sent none");
                        return false;
                      }
                      last_id_ = cmd.contains("id") ? cmd["id"] : Json();
                      for (int fd : last_fds_) ::close(fd);
                      last_fds_ = fds;
                      std::string got = cmd.value("execute", std::string("<none>"));
                      if (got != name) {
                        Fail("expected command " + name + ", got " + cmd.dump());
                        return false;
                      }
                      Json args = cmd.contains("arguments") ? cmd["arguments"] : Json::object();
                      if (!qmp::JsonContains(args, args_subset)) {
                        Fail("command " + name + ": arguments " + args.dump() + " do not contain " +
                             args_subset.dump());
                        return false;
                      }
                      if (!last_id_.is_string() && !last_id_.is_number()) {
                        Fail("command " + name + " carries no id: " + cmd.dump());
                        return false;
                      }
                      return true;
                    }});
  return *this;
}

FakeQmpPeer& FakeQmpPeer::ExpectFd() {
  steps_.push_back({"expect fd", [this] {
                      if (last_fds_.size() != 1) {
                        Fail("expected one fd with the command, got " +
                             std::to_string(last_fds_.size()));
                        return false;
                      }
                      struct stat st;
                      ::fstat(last_fds_[0], &st);
                      std::lock_guard<std::mutex> l(mu_);
                      received_.push_back(st);
                      return true;
                    }});
  return *this;
}

FakeQmpPeer& FakeQmpPeer::Reply(Json value) {
  steps_.push_back({"reply", [this, value] {
                      Json r = {{"return", value}, {"id", last_id_}};
                      return WriteAll(r.dump() + "\r\n");
                    }});
  return *this;
}

FakeQmpPeer& FakeQmpPeer::ReplyError(std::string error_class, std::string desc) {
  steps_.push_back(
      {"error reply", [this, error_class, desc] {
         Json r = {{"error", {{"class", error_class}, {"desc", desc}}}, {"id", last_id_}};
         return WriteAll(r.dump() + "\r\n");
       }});
  return *this;
}

FakeQmpPeer& FakeQmpPeer::Event(std::string name, Json data) {
  Json e = {{"event", name},
            {"data", data},
            {"timestamp", {{"seconds", 1795321590}, {"microseconds", 587469}}}};
  return Raw(e.dump() + "\r\n");
}

FakeQmpPeer& FakeQmpPeer::Raw(std::string bytes) {
  steps_.push_back({"raw bytes", [this, bytes] { return WriteAll(bytes); }});
  return *this;
}

FakeQmpPeer& FakeQmpPeer::Delay(absl::Duration d) {
  steps_.push_back({"delay", [this, d] { return !WaitStop(d); }});
  return *this;
}

FakeQmpPeer& FakeQmpPeer::Hang() {
  steps_.push_back({"hang", [this] {
                      WaitStop(absl::InfiniteDuration());
                      return false;
                    }});
  return *this;
}

FakeQmpPeer& FakeQmpPeer::Close() {
  steps_.push_back({"close", [this] {
                      mine_.reset();
                      return false;
                    }});
  return *this;
}

void FakeQmpPeer::Start() {
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void FakeQmpPeer::Run() {
  while (next_step_ < steps_.size()) {
    Step& s = steps_[next_step_++];
    if (!s.run()) return;
  }
  // The script is over: anything further the client sends is unexpected.
  Json cmd;
  std::vector<int> fds;
  while (ReadCommand(&cmd, &fds)) {
    Fail("unexpected command after the script ended: " + cmd.dump());
    for (int fd : fds) ::close(fd);
    fds.clear();
  }
}

std::vector<std::string> FakeQmpPeer::Finish() {
  if (finished_) return {};
  finished_ = true;
  if (stop_write_.valid()) {
    [[maybe_unused]] ssize_t n = ::write(stop_write_.get(), "x", 1);
  }
  if (thread_.joinable()) thread_.join();
  for (int fd : last_fds_) ::close(fd);
  last_fds_.clear();
  for (int fd : pending_fds_) ::close(fd);
  pending_fds_.clear();
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::string> out = failures_;
  if (!started_ && !steps_.empty()) out.push_back("the script was never started");
  for (size_t i = next_step_; started_ && i < steps_.size(); ++i) {
    out.push_back("unused step " + std::to_string(i) + ": " + steps_[i].what);
  }
  return out;
}

std::vector<struct stat> FakeQmpPeer::received_fds() const {
  std::lock_guard<std::mutex> l(mu_);
  return received_;
}

std::vector<FakeQmpPeer::Json> FakeQmpPeer::commands() const {
  std::lock_guard<std::mutex> l(mu_);
  return commands_;
}

void FakeQmpPeer::Fail(std::string msg) {
  std::lock_guard<std::mutex> l(mu_);
  failures_.push_back(std::move(msg));
}

bool FakeQmpPeer::WaitStop(absl::Duration d) {
  pollfd p{stop_read_.get(), POLLIN, 0};
  int ms = d == absl::InfiniteDuration() ? -1 : static_cast<int>(absl::ToInt64Milliseconds(d));
  return ::poll(&p, 1, ms) > 0;
}

bool FakeQmpPeer::WriteAll(const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(mine_.get(), s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // the client went away; later steps stay unused
    off += static_cast<size_t>(n);
  }
  return true;
}

bool FakeQmpPeer::ReadCommand(Json* out, std::vector<int>* fds) {
  for (;;) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      *out = Json::parse(line, nullptr, false);
      if (out->is_discarded()) {
        Fail("the client sent invalid JSON: " + line);
        return false;
      }
      *fds = std::move(pending_fds_);
      pending_fds_.clear();
      std::lock_guard<std::mutex> l(mu_);
      commands_.push_back(*out);
      return true;
    }
    pollfd p[2] = {{mine_.get(), POLLIN, 0}, {stop_read_.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (p[1].revents) return false;
    char buf[65536];
    iovec iov{buf, sizeof buf};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(mine_.get(), &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          pending_fds_.push_back(fd);
        }
      }
    }
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace runvm::testing
