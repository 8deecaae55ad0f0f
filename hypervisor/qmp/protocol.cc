#include "hypervisor/qmp/protocol.h"

#include "absl/strings/str_cat.h"

namespace runvm::qmp {
namespace {

absl::Status Bad(absl::string_view why, absl::string_view text) {
  std::string excerpt(text.substr(0, 200));
  return absl::InvalidArgumentError(
      absl::StrCat(why, ": ", excerpt, text.size() > 200 ? "..." : ""));
}

// The member `key` of `obj`, or nullptr (also when `obj` is not an object). nlohmann's const
// operator[] on a missing key is undefined behaviour, so every lookup goes through here.
const Json* Get(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

int64_t IntOr0(const Json* obj, const char* key) {
  const Json* v = obj ? Get(*obj, key) : nullptr;
  return v && v->is_number_integer() ? v->get<int64_t>() : 0;
}

absl::StatusOr<Message> ParseGreeting(const Json& j, absl::string_view text) {
  const Json* qmp = Get(j, "QMP");
  if (!qmp || !qmp->is_object()) return Bad("greeting without a QMP object", text);
  Greeting g;
  const Json* version = Get(*qmp, "version");
  const Json* q = version ? Get(*version, "qemu") : nullptr;
  g.major = static_cast<int>(IntOr0(q, "major"));
  g.minor = static_cast<int>(IntOr0(q, "minor"));
  g.micro = static_cast<int>(IntOr0(q, "micro"));
  const Json* package = version ? Get(*version, "package") : nullptr;
  if (package && package->is_string()) g.package = package->get<std::string>();
  if (const Json* caps = Get(*qmp, "capabilities")) {
    if (!caps->is_array()) return Bad("greeting capabilities is not an array", text);
    for (const Json& c : *caps) {
      if (!c.is_string()) return Bad("greeting capability is not a string", text);
      g.capabilities.push_back(c.get<std::string>());
    }
  }
  return Message(std::move(g));
}

absl::StatusOr<Message> ParseReply(const Json& j, absl::string_view text) {
  Reply r;
  if (const Json* id = Get(j, "id")) r.id = *id;
  const Json* ret = Get(j, "return");
  const Json* err = Get(j, "error");
  if (ret) {
    if (err) return Bad("reply with both return and error", text);
    r.ok = true;
    r.value = *ret;
    return Message(std::move(r));
  }
  const Json* cls = err ? Get(*err, "class") : nullptr;
  const Json* desc = err ? Get(*err, "desc") : nullptr;
  if (!cls || !cls->is_string() || !desc || !desc->is_string()) {
    return Bad("error reply without a string class and desc", text);
  }
  r.error_class = cls->get<std::string>();
  r.error_desc = desc->get<std::string>();
  return Message(std::move(r));
}

absl::StatusOr<Message> ParseEvent(const Json& j, absl::string_view text) {
  const Json* name = Get(j, "event");
  if (!name || !name->is_string() || name->get_ref<const std::string&>().empty()) {
    return Bad("event without a name", text);
  }
  Event ev;
  ev.name = name->get<std::string>();
  if (const Json* data = Get(j, "data")) {
    if (!data->is_object()) return Bad("event data is not an object", text);
    ev.data = *data;
  }
  const Json* ts = Get(j, "timestamp");
  ev.seconds = IntOr0(ts, "seconds");
  ev.microseconds = IntOr0(ts, "microseconds");
  return Message(std::move(ev));
}

// nlohmann's parser recurses once per nesting level; bound the depth before parsing so that a
// hostile message cannot exhaust the stack. QMP replies nest a handful of levels.
constexpr int kMaxDepth = 64;

bool TooDeep(absl::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxDepth) return true;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<Message> ParseMessage(absl::string_view text) {
  if (TooDeep(text)) return Bad("message nested deeper than 64 levels", text);
  // nlohmann's lexer takes a NUL for the end of input; JSON text never holds one raw.
  if (text.find('\0') != absl::string_view::npos) return Bad("message holds a NUL byte", text);
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad("invalid JSON", text);
  if (!j.is_object()) return Bad("message is not a JSON object", text);
  if (j.contains("QMP")) return ParseGreeting(j, text);
  if (j.contains("event")) return ParseEvent(j, text);
  if (j.contains("return") || j.contains("error")) return ParseReply(j, text);
  return Bad("unknown kind of message", text);
}

absl::StatusOr<std::optional<std::string>> Framer::Next() {
  for (;;) {
    size_t nl = buffer_.find('\n', start_);
    if (nl == std::string::npos) {
      if (pending() > kMaxMessageBytes) {
        return absl::InvalidArgumentError(
            absl::StrCat("message over ", kMaxMessageBytes >> 20, " MiB without an end"));
      }
      if (start_ > 0 && start_ >= buffer_.size() / 2) {  // keep appends amortised O(n)
        buffer_.erase(0, start_);
        start_ = 0;
      }
      return std::optional<std::string>();
    }
    size_t end = nl;
    if (end > start_ && buffer_[end - 1] == '\r') --end;
    std::string line = buffer_.substr(start_, end - start_);
    start_ = nl + 1;
    if (line.size() > kMaxMessageBytes) {
      return absl::InvalidArgumentError(absl::StrCat("message of ", line.size(), " bytes, over ",
                                                     kMaxMessageBytes >> 20, " MiB"));
    }
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank line
    return std::optional<std::string>(std::move(line));
  }
}

bool JsonContains(const Json& value, const Json& subset) {
  if (!subset.is_object()) return value == subset;
  if (!value.is_object()) return false;
  for (const auto& [k, v] : subset.items()) {
    auto it = value.find(k);
    if (it == value.end() || !JsonContains(*it, v)) return false;
  }
  return true;
}

std::string EncodeCommand(absl::string_view name, const Json& args, const Json& id) {
  Json cmd = Json::object();
  cmd["execute"] = std::string(name);
  if (!args.is_null() && !(args.is_object() && args.empty())) cmd["arguments"] = args;
  if (!id.is_null()) cmd["id"] = id;
  return cmd.dump(-1, ' ', false, Json::error_handler_t::replace) + "\r\n";
}

}  // namespace runvm::qmp
