// FakeQmpPeer: a strict, scripted QMP monitor on a socketpair, for unit tests of the QMP client
// and of everything built on it (libvirt's approach: replay what QEMU says, check what we send).
//
//   FakeQmpPeer peer;
//   peer.Negotiate()
//       .ExpectCommand("device_del", {{"id", "blk0"}})
//       .Event("DEVICE_DELETED", {{"device", "blk0"}})   // an event before the reply
//       .Reply();
//   peer.Start();
//   auto qmp = qmp::Client::Adopt(peer.TakeClientEnd(), Deadline());
//   ...
//   EXPECT_THAT(peer.Finish(), IsEmpty());   // unexpected commands, unused steps, bad arguments
//
// Strict: a command with another name, or whose arguments do not contain the expected subset, a
// command after the script ended, and a step never reached are all reported by Finish().
#ifndef RUNVM_TESTS_TESTING_FAKE_QMP_PEER_H_
#define RUNVM_TESTS_TESTING_FAKE_QMP_PEER_H_

#include <sys/stat.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "base/fd.h"
#include "nlohmann/json.hpp"

namespace runvm::testing {

class FakeQmpPeer {
 public:
  using Json = nlohmann::json;

  FakeQmpPeer();
  ~FakeQmpPeer();
  FakeQmpPeer(const FakeQmpPeer&) = delete;
  FakeQmpPeer& operator=(const FakeQmpPeer&) = delete;

  // The client's end of the socketpair (once).
  Fd TakeClientEnd();

  static Json DefaultGreeting();

  // Script steps, run in order by Start().
  FakeQmpPeer& Greet(Json greeting = DefaultGreeting());
  // Greet, then expect qmp_capabilities (with no capability enabled) and reply.
  FakeQmpPeer& Negotiate();
  FakeQmpPeer& ExpectCommand(std::string name, Json args_subset = Json::object());
  // The last expected command must have carried exactly one fd; it is kept (see received_fds()).
  FakeQmpPeer& ExpectFd();
  // Replies to the last expected command, echoing its id.
  FakeQmpPeer& Reply(Json value = Json::object());
  FakeQmpPeer& ReplyError(std::string error_class, std::string desc);
  FakeQmpPeer& Event(std::string name, Json data = Json::object());
  FakeQmpPeer& Raw(std::string bytes);
  FakeQmpPeer& Delay(absl::Duration d);
  // Stops answering but keeps the socket open until Finish().
  FakeQmpPeer& Hang();
  // Closes the socket (QEMU died).
  FakeQmpPeer& Close();

  void Start();
  // Stops the peer and returns every failure. Called by the destructor too (failures then
  // ADD_FAILURE).
  std::vector<std::string> Finish();

  // stat() of each fd received with ExpectFd(), in order.
  std::vector<struct stat> received_fds() const;
  // Every command received, as JSON, in order.
  std::vector<Json> commands() const;

 private:
  struct Step {
    std::string what;
    std::function<bool()> run;  // false: stop the script (failure or closed)
  };
  bool ReadCommand(Json* out, std::vector<int>* fds);
  bool WriteAll(const std::string& s);
  bool WaitStop(absl::Duration d);  // true when stop was requested
  void Fail(std::string msg);
  void Run();

  Fd mine_;
  Fd theirs_;
  Fd stop_read_, stop_write_;
  std::vector<Step> steps_;
  size_t next_step_ = 0;
  std::thread thread_;
  bool started_ = false;
  bool finished_ = false;
  std::string buffer_;
  std::vector<int> pending_fds_;
  Json last_id_;
  std::vector<int> last_fds_;
  mutable std::mutex mu_;
  std::vector<std::string> failures_;
  std::vector<struct stat> received_;
  std::vector<Json> commands_;
};

}  // namespace runvm::testing

#endif  // RUNVM_TESTS_TESTING_FAKE_QMP_PEER_H_
