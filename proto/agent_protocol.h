// The agent protocol: framed JSON messages between the host (each runvm invocation, the shims)
// and the guest agent, over the agent port (a virtio-serial port, or vsock).
//
//   frame   = "RVA1" | u32 big-endian payload length | payload
//   payload = a JSON object {"type": "...", "id": <u64>, ...fields}
//
// A response carries its request's id and type; a failed request is answered with type "error"
// and a "message". Every host connection begins with `hello` carrying a fresh epoch, and the host
// ignores everything until the agent's `hello` with that epoch comes back.
//
// Resynchronisation (../shared/DESIGN.md, virtio-serial facts): the guest may see no EOF between
// two host connections, so the bytes of a client killed mid-frame run straight into the next
// client's. FrameReader therefore skips garbage up to the next magic, drops frames whose payload
// is no message (a length field holds NUL bytes, which valid JSON never does, so a real message
// never contains an embedded frame), and abandons an incomplete frame as soon as a complete
// `hello` frame appears inside what it was waiting for: a truncated frame can never make the
// agent wait for bytes that will not come.
#ifndef RUNVM_PROTO_AGENT_PROTOCOL_H_
#define RUNVM_PROTO_AGENT_PROTOCOL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace runvm::agent_proto {

inline constexpr absl::string_view kMagic = "RVA1";
inline constexpr size_t kHeaderBytes = 8;
inline constexpr uint32_t kMaxPayload = 4 << 20;
// A hello frame is small; one that is not complete within this many bytes is no hello.
inline constexpr size_t kMaxHelloFrame = 1024;

// Where the guest mounts the sandbox's shared directory (virtio-fs or 9p): a container's rootfs
// bound at <shared dir>/<id> on the host is <kGuestShareMount>/<id> in the guest.
inline constexpr char kGuestShareMount[] = "/run/shared";

// Message types.
inline constexpr char kHello[] = "hello";
inline constexpr char kHealth[] = "health";
inline constexpr char kGuestDetails[] = "guest_details";
inline constexpr char kRun[] = "run";
inline constexpr char kError[] = "error";
inline constexpr char kCreateContainer[] = "create_container";
inline constexpr char kStartContainer[] = "start_container";
inline constexpr char kSignal[] = "signal";
inline constexpr char kWait[] = "wait";
inline constexpr char kDestroy[] = "destroy";
inline constexpr char kProcesses[] = "processes";
// A further process in a running container: a CreateContainer body whose id is
// "<container>/<exec id>" (rootfs unused; spec_json is the container's spec with this process),
// answered with Created. The process is started at once and is addressed by that id in signal,
// wait, processes and destroy; destroying the container destroys its execs.
inline constexpr char kExecProcess[] = "exec_process";
// A container's cgroup in the guest (cgroup v2, one per container, its execs included):
// pause and resume freeze and thaw it (ContainerRef, answered once the freeze has taken hold),
// update applies an OCI LinuxResources object to it (UpdateRequest), stats reads it (ContainerRef,
// answered with CgroupStats).
inline constexpr char kPause[] = "pause";
inline constexpr char kResume[] = "resume";
inline constexpr char kUpdate[] = "update";
inline constexpr char kStats[] = "stats";
// The pod's network (NetworkConfig, answered with an empty body): each interface found by its MAC
// within timeout_ms of the request (its NIC was just hot-plugged), renamed, given its MTU and
// addresses and set up; then the routes. Sent once, before the pod's first container.
inline constexpr char kConfigureNetwork[] = "configure_network";

struct Message {
  std::string type;
  uint64_t id = 0;
  nlohmann::json fields = nlohmann::json::object();  // everything but type and id
};

std::string EncodeFrame(const Message& message);

// An incremental decoder with resynchronisation (above). Not thread-safe.
class FrameReader {
 public:
  void Feed(absl::string_view bytes);
  // The next complete message, or nullopt until more bytes arrive.
  std::optional<Message> Next();
  // Bytes skipped so far as garbage (for logs and tests).
  uint64_t discarded() const { return discarded_; }
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  void Skip(size_t n);
  // The offset (from pos_) of a complete, valid hello frame after the current header, or npos.
  // Resumes where the last unsuccessful search could still have missed one, so a large frame
  // arriving in small pieces is not rescanned from its start each time.
  size_t FindHelloInside();
  std::string buf_;
  size_t pos_ = 0;
  size_t hello_scan_ = 0;  // in buf_: no hello frame starts before this
  uint64_t discarded_ = 0;
};

// Parses a payload; InvalidArgument when it is not a message.
absl::StatusOr<Message> ParsePayload(absl::string_view payload);

// ---- typed bodies (strict: every field present with its type) ----

struct Hello {
  std::string epoch;
};
struct HelloReply {
  std::string epoch;
  std::string kernel;  // uname -r
  std::string agent_version;
};
struct GuestDetails {
  int64_t memory_block_size_bytes = 0;  // /sys/devices/system/memory/block_size_bytes
  std::string kernel;
  int online_cpus = 0;
  int64_t mem_total_kib = 0;
};
// Runs a command in the guest (not in a container) and collects its output: the operator's and
// the tests' window into the guest.
struct RunRequest {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // NAME=value; empty: the agent's own
  std::string cwd;               // empty: /
  int64_t timeout_ms = 10000;
};
struct RunResult {
  int exit_status = -1;  // shell convention: 128 + signal when killed
  std::string out;
  std::string err;
  bool timed_out = false;
};
struct Error {
  std::string message;
};
// Creates a container's init, stopped before exec; its stdio goes over the port named
// `stdio_port` (proto/io_frame.h), which the host hot-plugged before asking.
struct CreateContainer {
  std::string id;
  std::string rootfs;     // in the guest
  std::string spec_json;  // the OCI spec (root.path is ignored: rootfs is)
  std::string stdio_port;
};
struct ContainerRef {  // start_container, destroy, processes, pause, resume, stats
  std::string id;
};
struct UpdateRequest {
  std::string id;
  std::string resources_json;  // an OCI LinuxResources object; absent fields stay as they are
};
// A container's cgroup figures as the guest's cgroup v2 files give them; -1 for "max".
// A route of a guest interface, as `ip route` would take it.
struct GuestRoute {
  std::string dest;     // "default", "10.1.0.0/16", "2001:db8::/64"
  std::string gateway;  // empty: on link
  bool operator==(const GuestRoute&) const = default;
};
// A guest NIC as the pod's namespace had it.
struct GuestInterface {
  std::string mac;   // how the agent finds it
  std::string name;  // "eth0"
  int64_t mtu = 1500;
  std::vector<std::string> addresses;  // "10.88.0.5/16", "2001:db8::5/64"
  std::vector<GuestRoute> routes;
  bool operator==(const GuestInterface&) const = default;
};
struct NetworkConfig {
  std::vector<GuestInterface> interfaces;
  int64_t timeout_ms = 20000;
};
nlohmann::json InterfaceToJson(const GuestInterface& v);
// Strict; errors name `what` and the field.
absl::StatusOr<GuestInterface> InterfaceFromJson(const nlohmann::json& j, absl::string_view what);

struct CgroupStats {
  int64_t cpu_usage_usec = 0, cpu_user_usec = 0, cpu_system_usec = 0;  // cpu.stat
  int64_t cpu_periods = 0, cpu_throttled_periods = 0, cpu_throttled_usec = 0;
  int64_t memory_current = 0, memory_max = -1, memory_peak = 0;  // memory.*
  int64_t swap_current = 0, swap_max = -1;
  int64_t oom = 0, oom_kill = 0;  // memory.events
  int64_t pids_current = 0, pids_max = -1;
  bool frozen = false;                         // cgroup.events
  std::map<std::string, int64_t> memory_stat;  // memory.stat
};
struct SignalRequest {
  std::string id;
  int signal = 15;
  bool all = false;  // every process in the container's pid namespace, not only its init
};
struct WaitRequest {
  std::string id;
  int64_t timeout_ms = 0;  // 0: answer at once
};
struct WaitResult {
  bool exited = false;
  int exit_status = -1;  // shell convention, when exited
};
struct Created {
  int64_t pid = 0;  // in the guest
};
struct ProcessEntry {
  int64_t pid = 0;  // in the guest's pid namespace
  std::string command;
  // What `ps -ef` shows of it (absent from an older agent: the defaults).
  int64_t uid = 0;
  int64_t ppid = 0;         // the parent's guest pid (the init's is the agent's)
  int64_t start_unix = 0;   // when it started, seconds since the epoch (the guest's clock)
  int64_t cpu_seconds = 0;  // user + system time
  std::string tty;          // "pts/0", or empty for none
  bool operator==(const ProcessEntry&) const = default;
};
struct ProcessList {  // the answer to processes: every process of the container, by pid
  std::vector<ProcessEntry> processes;
};

nlohmann::json ToFields(const Hello& v);
nlohmann::json ToFields(const HelloReply& v);
nlohmann::json ToFields(const GuestDetails& v);
nlohmann::json ToFields(const RunRequest& v);
nlohmann::json ToFields(const RunResult& v);
nlohmann::json ToFields(const Error& v);
nlohmann::json ToFields(const CreateContainer& v);
nlohmann::json ToFields(const ContainerRef& v);
nlohmann::json ToFields(const SignalRequest& v);
nlohmann::json ToFields(const WaitRequest& v);
nlohmann::json ToFields(const WaitResult& v);
nlohmann::json ToFields(const Created& v);
nlohmann::json ToFields(const ProcessList& v);
nlohmann::json ToFields(const UpdateRequest& v);
nlohmann::json ToFields(const CgroupStats& v);
nlohmann::json ToFields(const NetworkConfig& v);

absl::StatusOr<Hello> HelloFrom(const Message& m);
absl::StatusOr<HelloReply> HelloReplyFrom(const Message& m);
absl::StatusOr<GuestDetails> GuestDetailsFrom(const Message& m);
absl::StatusOr<RunRequest> RunRequestFrom(const Message& m);
absl::StatusOr<RunResult> RunResultFrom(const Message& m);
absl::StatusOr<Error> ErrorFrom(const Message& m);
absl::StatusOr<CreateContainer> CreateContainerFrom(const Message& m);  // also exec_process
// start_container, destroy, processes
absl::StatusOr<ContainerRef> ContainerRefFrom(const Message& m);
absl::StatusOr<SignalRequest> SignalRequestFrom(const Message& m);
absl::StatusOr<WaitRequest> WaitRequestFrom(const Message& m);
absl::StatusOr<WaitResult> WaitResultFrom(const Message& m);
absl::StatusOr<Created> CreatedFrom(const Message& m);  // also exec_process
absl::StatusOr<ProcessList> ProcessListFrom(const Message& m);
absl::StatusOr<UpdateRequest> UpdateRequestFrom(const Message& m);
absl::StatusOr<CgroupStats> CgroupStatsFrom(const Message& m);
absl::StatusOr<NetworkConfig> NetworkConfigFrom(const Message& m);

}  // namespace runvm::agent_proto

#endif  // RUNVM_PROTO_AGENT_PROTOCOL_H_
