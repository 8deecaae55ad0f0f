// The QMP wire format, without I/O: framing of the byte stream into messages, classification
// of each message, and encoding of commands. The client (client.h) and the fuzz target use it.
//
//   Framer framer;
//   framer.Append(bytes, n);
//   while (true) {
//     ASSIGN_OR_RETURN(std::optional<std::string> line, framer.Next());
//     if (!line) break;
//     ASSIGN_OR_RETURN(Message m, ParseMessage(*line));
//   }
//
// Errors never throw: a malformed stream yields InvalidArgument naming what was wrong.
#ifndef RUNVM_HYPERVISOR_QMP_PROTOCOL_H_
#define RUNVM_HYPERVISOR_QMP_PROTOCOL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace runvm::qmp {

using Json = nlohmann::json;

// Messages larger than this break the session (QEMU's own replies stay far below it).
inline constexpr size_t kMaxMessageBytes = 10 << 20;

struct Greeting {
  int major = 0;
  int minor = 0;
  int micro = 0;
  std::string package;
  std::vector<std::string> capabilities;
};

struct Reply {
  Json id;  // null when QEMU sent none
  bool ok = false;
  Json value;               // "return", when ok
  std::string error_class;  // "error.class", when !ok
  std::string error_desc;   // "error.desc", when !ok
};

struct Event {
  std::string name;
  Json data = Json::object();
  int64_t seconds = 0;
  int64_t microseconds = 0;
};

using Message = std::variant<Greeting, Reply, Event>;

// Classifies one message. Anything that is not a well-formed greeting, reply or event is an
// error: invalid JSON (including invalid UTF-8), a non-object, an unknown kind, an event without
// a string name, an error reply without class and desc.
absl::StatusOr<Message> ParseMessage(absl::string_view text);

// Splits the stream at newlines (QEMU ends every message with "\r\n" and never puts a raw newline
// inside one). Enforces kMaxMessageBytes also on an unterminated message.
class Framer {
 public:
  void Append(const char* data, size_t n) { buffer_.append(data, n); }
  // The next complete message (without its line ending), nullopt when none is complete yet.
  absl::StatusOr<std::optional<std::string>> Next();
  // Bytes of an incomplete message held (what was cut off when the stream ends here).
  size_t pending() const { return buffer_.size() - start_; }

 private:
  std::string buffer_;
  size_t start_ = 0;
};

// True when every member of `subset` is in `value` with an equal value, objects compared
// recursively (how event waiters and the fake peer match data and arguments).
bool JsonContains(const Json& value, const Json& subset);

// {"execute":NAME,"arguments":ARGS,"id":ID}\r\n; "arguments" is omitted when ARGS is null or an
// empty object.
std::string EncodeCommand(absl::string_view name, const Json& args, const Json& id);

}  // namespace runvm::qmp

#endif  // RUNVM_HYPERVISOR_QMP_PROTOCOL_H_
