// A QMP client that stays correct under every fault QEMU's monitor can show.
//
//   ASSIGN_OR_RETURN(auto qmp, qmp::Client::Connect(dir + "/qmp.sock", Deadline(2s)));
//   auto deleted = qmp->ExpectEvent("DEVICE_DELETED", {{"device", "blk3"}});  // before the cause
//   RETURN_IF_ERROR(qmp->Execute("device_del", {{"id", "blk3"}}, Deadline(1s)).status());
//   absl::StatusOr<qmp::Event> ev = qmp->WaitEvent(deleted, Deadline(10s));
//
// Guarantees:
// - Connect reads the greeting with a deadline and negotiates capabilities before anything else;
//   only capabilities the greeting offered are enabled.
// - One command is in flight at a time; every command carries a unique id and the echoed id is
//   verified, so no reply is ever attributed to the wrong command.
// - An error reply becomes a Status whose message holds the QMP class and desc; the class is
//   available as data (ErrorClass()), so callers branch on "DeviceNotFound", never on text.
// - Events are dispatched in wire order, also while a command waits for its reply: an event
//   that matches a registered waiter is kept for it; others are queued for TakeEvents().
// - Every call has a deadline. A command whose deadline passes poisons the session (its reply
//   may still come, so later replies could be misattributed): later calls fail at once, saying
//   so. An event wait that times out does not poison.
// - A protocol violation (oversized message, invalid JSON or UTF-8, a non-object, an unknown
//   kind, an event without a name, a reply with no command outstanding or with a foreign id)
//   breaks the session with an error naming it. EOF or a reset, also mid-message, fails the
//   pending call with "QEMU monitor closed", which is distinct from a timeout.
//
// Threading: a Client is not thread-safe. It does I/O only inside its calls (no background
// thread), so one thread at a time may use it; runvm serialises CLI invocations with the sandbox
// lock, and the sandbox watcher owns a separate Client on the second monitor socket.
#ifndef RUNVM_HYPERVISOR_QMP_CLIENT_H_
#define RUNVM_HYPERVISOR_QMP_CLIENT_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/fd.h"
#include "hypervisor/qmp/protocol.h"

namespace runvm::qmp {

// The QMP error class ("DeviceNotFound", "GenericError", ...) of a status made from an error
// reply; nullopt for any other status.
std::optional<std::string> ErrorClass(const absl::Status& status);
inline bool HasErrorClass(const absl::Status& status, absl::string_view cls) {
  std::optional<std::string> c = ErrorClass(status);
  return c.has_value() && *c == cls;
}

struct ConnectOptions {
  // Capabilities to enable (e.g. "oob"); each must be offered by the greeting.
  std::vector<std::string> capabilities;
};

class Client {
 public:
  using WaiterId = uint64_t;

  // Connects to the monitor's unix socket, reads the greeting and negotiates, all by `deadline`.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const std::string& socket_path,
                                                         absl::Time deadline,
                                                         const ConnectOptions& options = {});
  // The same over an already-connected socket (made non-blocking here).
  static absl::StatusOr<std::unique_ptr<Client>> Adopt(Fd fd, absl::Time deadline,
                                                       const ConnectOptions& options = {},
                                                       std::string name = "QMP socket");

  const Greeting& greeting() const { return greeting_; }

  // Runs `command` with `args` (an object, or null for none) and returns its "return" value.
  absl::StatusOr<Json> Execute(absl::string_view command, const Json& args, absl::Time deadline);
  // The same, passing `fd` with SCM_RIGHTS in the same sendmsg as the command. The local copy is
  // closed once sent (whatever the reply).
  absl::StatusOr<Json> ExecuteWithFd(absl::string_view command, const Json& args, Fd fd,
                                     absl::Time deadline);

  // getfd / closefd: a named fd in QEMU's monitor.
  absl::Status GetFd(absl::string_view name, Fd fd, absl::Time deadline);
  absl::Status CloseFd(absl::string_view name, absl::Time deadline);
  // add-fd / remove-fd: fd sets. Without `fdset_id` QEMU picks a new set.
  struct AddedFd {
    int64_t fdset_id = 0;
    int64_t fd = 0;
  };
  absl::StatusOr<AddedFd> AddFd(Fd fd, std::optional<int64_t> fdset_id, absl::string_view opaque,
                                absl::Time deadline);
  absl::Status RemoveFd(int64_t fdset_id, std::optional<int64_t> fd, absl::Time deadline);

  // Registers interest in the next event `name` whose data contains `data_subset` (every member
  // equal, recursively). Register before sending the command that causes the event.
  WaiterId ExpectEvent(absl::string_view name, Json data_subset = Json::object());
  // Waits for the waiter's event (returned at once when it already came). On success the waiter
  // is gone; on DeadlineExceeded it stays registered until CancelEvent() or a later wait.
  absl::StatusOr<Event> WaitEvent(WaiterId id, absl::Time deadline);
  // Waits until one of `ids` has its event (the first in `ids` order when several have) and
  // returns which one; that waiter is gone, the others stay registered. Used to wait for a
  // device's deletion or the guest's refusal, whichever comes first.
  struct Fired {
    WaiterId id;
    Event event;
  };
  absl::StatusOr<Fired> WaitAnyEvent(const std::vector<WaiterId>& ids, absl::Time deadline);
  void CancelEvent(WaiterId id);

  // Reads what QEMU sends until an unclaimed event is queued or `deadline` passes (OK either way);
  // for a watcher that issues no commands.
  absl::Status PollEvents(absl::Time deadline);
  // Unclaimed events in wire order, removed from the queue. At most kMaxQueuedEvents are kept;
  // older ones are dropped and counted in dropped_events().
  std::vector<Event> TakeEvents();
  static constexpr size_t kMaxQueuedEvents = 1024;
  uint64_t dropped_events() const { return dropped_events_; }

  // OK while the session can be used; otherwise why not (broken, poisoned or closed).
  absl::Status health() const { return health_; }

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

 private:
  struct Waiter {
    std::string name;
    Json match;
    std::optional<Event> event;
  };

  Client(Fd fd, std::string name);
  absl::Status Negotiate(absl::Time deadline, const ConnectOptions& options);
  absl::StatusOr<Json> Call(absl::string_view command, const Json& args, int fd,
                            absl::Time deadline);
  absl::Status Send(const std::string& bytes, int fd, absl::Time deadline, absl::string_view what);
  // Reads and dispatches until `done()` or the deadline. `what` names what is awaited, for
  // errors. Returns DeadlineExceeded on timeout (health untouched), or the session error.
  template <typename Done>
  absl::Status Pump(absl::Time deadline, absl::string_view what, Done done);
  absl::Status ReadOnce(absl::Time deadline, absl::string_view what, bool* timed_out);
  absl::Status Dispatch(Message message);
  absl::Status Break(absl::Status why);

  Fd fd_;
  std::string name_;
  Framer framer_;
  Greeting greeting_;
  bool greeted_ = false;
  absl::Status health_;
  uint64_t next_id_ = 1;
  std::optional<Json> outstanding_id_;  // the id of the command in flight
  std::optional<Reply> reply_;          // its reply, once read
  std::map<WaiterId, Waiter> waiters_;  // in registration order: first match wins
  WaiterId next_waiter_ = 1;
  std::deque<Event> events_;
  uint64_t dropped_events_ = 0;
};

}  // namespace runvm::qmp

#endif  // RUNVM_HYPERVISOR_QMP_CLIENT_H_
