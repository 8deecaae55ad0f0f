#include "proto/agent_protocol.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace runvm::agent_proto {
namespace {

using Json = nlohmann::json;

uint32_t ReadLength(const char* p) {
  auto b = [&](int i) { return static_cast<uint32_t>(static_cast<unsigned char>(p[i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

absl::Status Bad(const Message& m, absl::string_view field, absl::string_view kind) {
  return absl::InvalidArgumentError(absl::StrCat("agent message \"", m.type, "\" (id ", m.id,
                                                 "): field \"", field, "\" is missing or not ",
                                                 kind));
}

absl::Status Expect(const Message& m, absl::string_view type) {
  if (m.type == type) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("agent message: expected \"", type, "\", got \"", m.type, "\""));
}

absl::StatusOr<std::string> Str(const Message& m, const char* field) {
  auto it = m.fields.find(field);
  if (it == m.fields.end() || !it->is_string()) return Bad(m, field, "a string");
  return it->get<std::string>();
}

absl::StatusOr<int64_t> Int(const Message& m, const char* field) {
  auto it = m.fields.find(field);
  if (it == m.fields.end() || !it->is_number_integer()) return Bad(m, field, "an integer");
  return it->get<int64_t>();
}

absl::StatusOr<bool> Bool(const Message& m, const char* field) {
  auto it = m.fields.find(field);
  if (it == m.fields.end() || !it->is_boolean()) return Bad(m, field, "a boolean");
  return it->get<bool>();
}

absl::StatusOr<std::vector<std::string>> Strs(const Message& m, const char* field) {
  auto it = m.fields.find(field);
  if (it == m.fields.end() || !it->is_array()) return Bad(m, field, "a list of strings");
  std::vector<std::string> out;
  for (const Json& e : *it) {
    if (!e.is_string()) return Bad(m, field, "a list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

}  // namespace

std::string EncodeFrame(const Message& message) {
  Json j = message.fields.is_object() ? message.fields : Json::object();
  j["type"] = message.type;
  j["id"] = message.id;
  const std::string payload = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  const uint32_t n = static_cast<uint32_t>(payload.size());
  std::string frame(kMagic);
  frame.push_back(static_cast<char>(n >> 24));
  frame.push_back(static_cast<char>(n >> 16));
  frame.push_back(static_cast<char>(n >> 8));
  frame.push_back(static_cast<char>(n));
  frame += payload;
  return frame;
}

absl::StatusOr<Message> ParsePayload(absl::string_view payload) {
  // nlohmann's lexer (3.11) takes a NUL byte for the end of input, so `{...}\0garbage` would
  // parse. JSON text never holds a raw NUL; without this, a killed client's frame completed by
  // the next client's bytes could decode and swallow that client's hello.
  if (payload.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("agent frame: the payload holds a NUL byte");
  }
  Json j = Json::parse(payload.begin(), payload.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("agent frame: the payload is not a JSON object");
  }
  auto type = j.find("type");
  auto id = j.find("id");
  if (type == j.end() || !type->is_string() || id == j.end() || !id->is_number_unsigned()) {
    return absl::InvalidArgumentError("agent frame: no string \"type\" and unsigned \"id\"");
  }
  Message m{.type = type->get<std::string>(), .id = id->get<uint64_t>()};
  j.erase("type");
  j.erase("id");
  m.fields = std::move(j);
  return m;
}

void FrameReader::Feed(absl::string_view bytes) {
  // Compact now and then, so a long-lived reader does not grow without bound.
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    hello_scan_ = hello_scan_ > pos_ ? hello_scan_ - pos_ : 0;
    pos_ = 0;
  }
  buf_.append(bytes.data(), bytes.size());
}

void FrameReader::Skip(size_t n) {
  pos_ += n;
  discarded_ += n;
}

size_t FrameReader::FindHelloInside() {
  absl::string_view all(buf_);
  const size_t start = std::max(pos_ + 1, hello_scan_);
  for (size_t at = all.find(kMagic, start); at != absl::string_view::npos;
       at = all.find(kMagic, at + 1)) {
    if (all.size() - at < kHeaderBytes) break;
    const uint32_t n = ReadLength(all.data() + at + kMagic.size());
    if (n > kMaxPayload || all.size() - at - kHeaderBytes < n) continue;
    absl::StatusOr<Message> m = ParsePayload(all.substr(at + kHeaderBytes, n));
    if (m.ok() && m->type == kHello) return at - pos_;
  }
  // A hello starting earlier than this would have been complete, and found.
  if (all.size() > kMaxHelloFrame) hello_scan_ = std::max(hello_scan_, all.size() - kMaxHelloFrame);
  return absl::string_view::npos;
}

std::optional<Message> FrameReader::Next() {
  for (;;) {
    absl::string_view rest(buf_);
    rest.remove_prefix(pos_);
    size_t magic = rest.find(kMagic);
    if (magic == absl::string_view::npos) {
      // Keep what could be the start of a magic split across two reads.
      size_t keep = std::min(rest.size(), kMagic.size() - 1);
      Skip(rest.size() - keep);
      return std::nullopt;
    }
    if (magic > 0) {
      Skip(magic);
      continue;
    }
    if (rest.size() < kHeaderBytes) return std::nullopt;
    const uint32_t n = ReadLength(rest.data() + kMagic.size());
    if (n > kMaxPayload) {
      Skip(1);  // not a frame after all: look for the next magic
      continue;
    }
    if (rest.size() - kHeaderBytes < n) {
      // Incomplete. A client killed mid-frame is followed by another's hello: take that.
      size_t hello = FindHelloInside();
      if (hello == absl::string_view::npos) return std::nullopt;
      Skip(hello);
      continue;
    }
    absl::StatusOr<Message> m = ParsePayload(rest.substr(kHeaderBytes, n));
    if (!m.ok()) {
      Skip(1);
      continue;
    }
    pos_ += kHeaderBytes + n;
    return *std::move(m);
  }
}

// ---- typed bodies ----

Json ToFields(const Hello& v) { return {{"epoch", v.epoch}}; }
Json ToFields(const HelloReply& v) {
  return {{"epoch", v.epoch}, {"kernel", v.kernel}, {"agent_version", v.agent_version}};
}
Json ToFields(const GuestDetails& v) {
  return {{"memory_block_size_bytes", v.memory_block_size_bytes},
          {"kernel", v.kernel},
          {"online_cpus", v.online_cpus},
          {"mem_total_kib", v.mem_total_kib}};
}
Json ToFields(const RunRequest& v) {
  return {{"argv", v.argv}, {"env", v.env}, {"cwd", v.cwd}, {"timeout_ms", v.timeout_ms}};
}
Json ToFields(const RunResult& v) {
  return {
      {"exit_status", v.exit_status}, {"out", v.out}, {"err", v.err}, {"timed_out", v.timed_out}};
}
Json ToFields(const Error& v) { return {{"message", v.message}}; }

absl::StatusOr<Hello> HelloFrom(const Message& m) {
  if (absl::Status st = Expect(m, kHello); !st.ok()) return st;
  Hello v;
  ASSIGN_OR_RETURN(v.epoch, Str(m, "epoch"));
  return v;
}

absl::StatusOr<HelloReply> HelloReplyFrom(const Message& m) {
  if (absl::Status st = Expect(m, kHello); !st.ok()) return st;
  HelloReply v;
  ASSIGN_OR_RETURN(v.epoch, Str(m, "epoch"));
  ASSIGN_OR_RETURN(v.kernel, Str(m, "kernel"));
  ASSIGN_OR_RETURN(v.agent_version, Str(m, "agent_version"));
  return v;
}

absl::StatusOr<GuestDetails> GuestDetailsFrom(const Message& m) {
  if (absl::Status st = Expect(m, kGuestDetails); !st.ok()) return st;
  GuestDetails v;
  ASSIGN_OR_RETURN(v.memory_block_size_bytes, Int(m, "memory_block_size_bytes"));
  ASSIGN_OR_RETURN(v.kernel, Str(m, "kernel"));
  int64_t cpus = 0;
  ASSIGN_OR_RETURN(cpus, Int(m, "online_cpus"));
  v.online_cpus = static_cast<int>(cpus);
  ASSIGN_OR_RETURN(v.mem_total_kib, Int(m, "mem_total_kib"));
  return v;
}

absl::StatusOr<RunRequest> RunRequestFrom(const Message& m) {
  if (absl::Status st = Expect(m, kRun); !st.ok()) return st;
  RunRequest v;
  ASSIGN_OR_RETURN(v.argv, Strs(m, "argv"));
  ASSIGN_OR_RETURN(v.env, Strs(m, "env"));
  ASSIGN_OR_RETURN(v.cwd, Str(m, "cwd"));
  ASSIGN_OR_RETURN(v.timeout_ms, Int(m, "timeout_ms"));
  if (v.argv.empty()) return Bad(m, "argv", "a non-empty list");
  return v;
}

absl::StatusOr<RunResult> RunResultFrom(const Message& m) {
  if (absl::Status st = Expect(m, kRun); !st.ok()) return st;
  RunResult v;
  int64_t status = 0;
  ASSIGN_OR_RETURN(status, Int(m, "exit_status"));
  v.exit_status = static_cast<int>(status);
  ASSIGN_OR_RETURN(v.out, Str(m, "out"));
  ASSIGN_OR_RETURN(v.err, Str(m, "err"));
  ASSIGN_OR_RETURN(v.timed_out, Bool(m, "timed_out"));
  return v;
}

absl::StatusOr<Error> ErrorFrom(const Message& m) {
  if (absl::Status st = Expect(m, kError); !st.ok()) return st;
  Error v;
  ASSIGN_OR_RETURN(v.message, Str(m, "message"));
  return v;
}

Json ToFields(const CreateContainer& v) {
  return {{"container", v.id},
          {"rootfs", v.rootfs},
          {"spec", v.spec_json},
          {"stdio_port", v.stdio_port}};
}
Json ToFields(const ContainerRef& v) { return {{"container", v.id}}; }
Json ToFields(const SignalRequest& v) {
  return {{"container", v.id}, {"signal", v.signal}, {"all", v.all}};
}
Json ToFields(const WaitRequest& v) { return {{"container", v.id}, {"timeout_ms", v.timeout_ms}}; }
Json ToFields(const WaitResult& v) {
  return {{"exited", v.exited}, {"exit_status", v.exit_status}};
}
Json ToFields(const Created& v) { return {{"pid", v.pid}}; }
Json ToFields(const ProcessList& v) {
  Json list = Json::array();
  for (const ProcessEntry& p : v.processes) {
    list.push_back({{"pid", p.pid},
                    {"command", p.command},
                    {"uid", p.uid},
                    {"ppid", p.ppid},
                    {"start", p.start_unix},
                    {"cpu_seconds", p.cpu_seconds},
                    {"tty", p.tty}});
  }
  return {{"processes", std::move(list)}};
}

absl::StatusOr<CreateContainer> CreateContainerFrom(const Message& m) {
  if (m.type != kExecProcess) RETURN_IF_ERROR(Expect(m, kCreateContainer));
  CreateContainer v;
  ASSIGN_OR_RETURN(v.id, Str(m, "container"));
  ASSIGN_OR_RETURN(v.rootfs, Str(m, "rootfs"));
  ASSIGN_OR_RETURN(v.spec_json, Str(m, "spec"));
  ASSIGN_OR_RETURN(v.stdio_port, Str(m, "stdio_port"));
  return v;
}

absl::StatusOr<ContainerRef> ContainerRefFrom(const Message& m) {
  if (m.type != kStartContainer && m.type != kDestroy && m.type != kProcesses && m.type != kPause &&
      m.type != kResume && m.type != kStats) {
    RETURN_IF_ERROR(Expect(m, kDestroy));
  }
  ContainerRef v;
  ASSIGN_OR_RETURN(v.id, Str(m, "container"));
  return v;
}

absl::StatusOr<SignalRequest> SignalRequestFrom(const Message& m) {
  RETURN_IF_ERROR(Expect(m, kSignal));
  SignalRequest v;
  ASSIGN_OR_RETURN(v.id, Str(m, "container"));
  int64_t sig = 0;
  ASSIGN_OR_RETURN(sig, Int(m, "signal"));
  if (sig <= 0 || sig > 64) return Bad(m, "signal", "a signal number 1..64");
  v.signal = static_cast<int>(sig);
  ASSIGN_OR_RETURN(v.all, Bool(m, "all"));
  return v;
}

absl::StatusOr<WaitRequest> WaitRequestFrom(const Message& m) {
  RETURN_IF_ERROR(Expect(m, kWait));
  WaitRequest v;
  ASSIGN_OR_RETURN(v.id, Str(m, "container"));
  ASSIGN_OR_RETURN(v.timeout_ms, Int(m, "timeout_ms"));
  return v;
}

absl::StatusOr<WaitResult> WaitResultFrom(const Message& m) {
  RETURN_IF_ERROR(Expect(m, kWait));
  WaitResult v;
  ASSIGN_OR_RETURN(v.exited, Bool(m, "exited"));
  int64_t status = 0;
  ASSIGN_OR_RETURN(status, Int(m, "exit_status"));
  v.exit_status = static_cast<int>(status);
  return v;
}

absl::StatusOr<Created> CreatedFrom(const Message& m) {
  if (m.type != kExecProcess) RETURN_IF_ERROR(Expect(m, kCreateContainer));
  Created v;
  ASSIGN_OR_RETURN(v.pid, Int(m, "pid"));
  return v;
}

absl::StatusOr<ProcessList> ProcessListFrom(const Message& m) {
  RETURN_IF_ERROR(Expect(m, kProcesses));
  auto list = m.fields.find("processes");
  if (list == m.fields.end() || !list->is_array()) {
    return Bad(m, "processes", "a list of {pid, command}");
  }
  ProcessList v;
  for (const Json& e : *list) {
    auto pid = e.is_object() ? e.find("pid") : e.end();
    auto command = e.is_object() ? e.find("command") : e.end();
    if (!e.is_object() || pid == e.end() || !pid->is_number_integer() || command == e.end() ||
        !command->is_string()) {
      return Bad(m, "processes", "a list of {pid, command}");
    }
    ProcessEntry entry{.pid = pid->get<int64_t>(), .command = command->get<std::string>()};
    for (auto [key, out] :
         {std::pair{"uid", &entry.uid}, std::pair{"ppid", &entry.ppid},
          std::pair{"start", &entry.start_unix}, std::pair{"cpu_seconds", &entry.cpu_seconds}}) {
      auto f = e.find(key);
      if (f == e.end()) continue;
      if (!f->is_number_integer()) return Bad(m, "processes", absl::StrCat(key, ": an integer"));
      *out = f->get<int64_t>();
    }
    if (auto tty = e.find("tty"); tty != e.end()) {
      if (!tty->is_string()) return Bad(m, "processes", "tty: a string");
      entry.tty = tty->get<std::string>();
    }
    v.processes.push_back(std::move(entry));
  }
  return v;
}

Json ToFields(const UpdateRequest& v) {
  return {{"container", v.id}, {"resources", v.resources_json}};
}

absl::StatusOr<UpdateRequest> UpdateRequestFrom(const Message& m) {
  RETURN_IF_ERROR(Expect(m, kUpdate));
  UpdateRequest v;
  ASSIGN_OR_RETURN(v.id, Str(m, "container"));
  ASSIGN_OR_RETURN(v.resources_json, Str(m, "resources"));
  return v;
}

Json InterfaceToJson(const GuestInterface& v) {
  Json routes = Json::array();
  for (const GuestRoute& r : v.routes) routes.push_back({{"dest", r.dest}, {"gateway", r.gateway}});
  return {{"mac", v.mac},
          {"name", v.name},
          {"mtu", v.mtu},
          {"addresses", v.addresses},
          {"routes", std::move(routes)}};
}

absl::StatusOr<GuestInterface> InterfaceFromJson(const Json& j, absl::string_view what) {
  auto bad = [&](absl::string_view field, absl::string_view kind) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field \"", field, "\" is missing or not ", kind));
  };
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(what, ": not an object"));
  GuestInterface v;
  for (auto [field, out] : {std::pair{"mac", &v.mac}, std::pair{"name", &v.name}}) {
    auto f = j.find(field);
    if (f == j.end() || !f->is_string()) return bad(field, "a string");
    *out = f->get<std::string>();
  }
  auto mtu = j.find("mtu");
  if (mtu == j.end() || !mtu->is_number_integer()) return bad("mtu", "an integer");
  v.mtu = mtu->get<int64_t>();
  auto addresses = j.find("addresses");
  if (addresses == j.end() || !addresses->is_array()) return bad("addresses", "a list of strings");
  for (const Json& a : *addresses) {
    if (!a.is_string()) return bad("addresses", "a list of strings");
    v.addresses.push_back(a.get<std::string>());
  }
  auto routes = j.find("routes");
  if (routes == j.end() || !routes->is_array()) return bad("routes", "a list of {dest, gateway}");
  for (const Json& r : *routes) {
    auto dest = r.is_object() ? r.find("dest") : r.end();
    auto gateway = r.is_object() ? r.find("gateway") : r.end();
    if (!r.is_object() || dest == r.end() || !dest->is_string() || gateway == r.end() ||
        !gateway->is_string()) {
      return bad("routes", "a list of {dest, gateway}");
    }
    v.routes.push_back({.dest = dest->get<std::string>(), .gateway = gateway->get<std::string>()});
  }
  return v;
}

Json ToFields(const NetworkConfig& v) {
  Json interfaces = Json::array();
  for (const GuestInterface& i : v.interfaces) interfaces.push_back(InterfaceToJson(i));
  return {{"interfaces", std::move(interfaces)}, {"timeout_ms", v.timeout_ms}};
}

absl::StatusOr<NetworkConfig> NetworkConfigFrom(const Message& m) {
  RETURN_IF_ERROR(Expect(m, kConfigureNetwork));
  auto list = m.fields.find("interfaces");
  if (list == m.fields.end() || !list->is_array()) return Bad(m, "interfaces", "a list");
  NetworkConfig v;
  for (size_t i = 0; i < list->size(); ++i) {
    ASSIGN_OR_RETURN(GuestInterface iface,
                     InterfaceFromJson((*list)[i], absl::StrCat(m.type, ": interfaces[", i, "]")));
    v.interfaces.push_back(std::move(iface));
  }
  auto timeout = m.fields.find("timeout_ms");
  if (timeout == m.fields.end() || !timeout->is_number_integer()) {
    return Bad(m, "timeout_ms", "an integer");
  }
  v.timeout_ms = timeout->get<int64_t>();
  return v;
}

namespace {

// CgroupStats's integer figures by their field names.
constexpr std::pair<const char*, int64_t CgroupStats::*> kStatFields[] = {
    {"cpu_usage_usec", &CgroupStats::cpu_usage_usec},
    {"cpu_user_usec", &CgroupStats::cpu_user_usec},
    {"cpu_system_usec", &CgroupStats::cpu_system_usec},
    {"cpu_periods", &CgroupStats::cpu_periods},
    {"cpu_throttled_periods", &CgroupStats::cpu_throttled_periods},
    {"cpu_throttled_usec", &CgroupStats::cpu_throttled_usec},
    {"memory_current", &CgroupStats::memory_current},
    {"memory_max", &CgroupStats::memory_max},
    {"memory_peak", &CgroupStats::memory_peak},
    {"swap_current", &CgroupStats::swap_current},
    {"swap_max", &CgroupStats::swap_max},
    {"oom", &CgroupStats::oom},
    {"oom_kill", &CgroupStats::oom_kill},
    {"pids_current", &CgroupStats::pids_current},
    {"pids_max", &CgroupStats::pids_max},
};

}  // namespace

Json ToFields(const CgroupStats& v) {
  Json j = Json::object();
  for (const auto& [name, member] : kStatFields) j[name] = v.*member;
  j["frozen"] = v.frozen;
  j["memory_stat"] = v.memory_stat;
  return j;
}

absl::StatusOr<CgroupStats> CgroupStatsFrom(const Message& m) {
  RETURN_IF_ERROR(Expect(m, kStats));
  CgroupStats v;
  for (const auto& [name, member] : kStatFields) {
    ASSIGN_OR_RETURN(v.*member, Int(m, name));
  }
  ASSIGN_OR_RETURN(v.frozen, Bool(m, "frozen"));
  auto stat = m.fields.find("memory_stat");
  if (stat == m.fields.end() || !stat->is_object()) {
    return Bad(m, "memory_stat", "an object of integers");
  }
  for (auto it = stat->begin(); it != stat->end(); ++it) {
    if (!it->is_number_integer()) return Bad(m, "memory_stat", "an object of integers");
    v.memory_stat[it.key()] = it->get<int64_t>();
  }
  return v;
}

}  // namespace runvm::agent_proto
