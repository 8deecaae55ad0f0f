#include "runtime/sandbox/store.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/failpoint.h"
#include "base/file.h"
#include "base/log.h"
#include "base/process_identity.h"
#include "base/status.h"
#include "hypervisor/qemu/vm_record.h"
#include "hypervisor/qmp/client.h"
#include "nlohmann/json.hpp"
#include "persist/fields.h"
#include "runtime/sandbox/agent_client.h"
#include "runtime/sandbox/network.h"

namespace runvm {
namespace {

using Json = nlohmann::json;

constexpr char kRecordName[] = "sandbox.json";
constexpr absl::Duration kQmpConnectTimeout = absl::Seconds(5);
constexpr absl::Duration kQmpTimeout = absl::Seconds(5);
constexpr absl::Duration kGuestReadyTimeout = absl::Seconds(60);

std::string Now() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", absl::Now(), absl::UTCTimeZone());
}

// Why the recorded QEMU is not running, or "" when it is. Never signals anything.
struct Liveness {
  std::string status;  // kRunning, kStopped or kLost
  std::string detail;
};

Liveness CheckQemu(const qemu::RunningVm& vm) {
  if (IsAlive(vm.qemu)) return {kRunning, ""};
  absl::StatusOr<ProcessIdentity> now = ReadProcessIdentity(vm.qemu.pid);
  if (!now.ok()) {
    return {kStopped,
            absl::StrCat("QEMU (pid ", vm.qemu.pid, ") exited while no runvm was running")};
  }
  return {kLost, absl::StrCat("the recorded QEMU (pid ", vm.qemu.pid, ", ", vm.qemu.exe,
                              ") is gone and pid ", vm.qemu.pid, " now belongs to ", now->exe,
                              "; that process is never signalled")};
}

// The helpers a killed boot left: those carrying the marker (QEMU, virtiofsd), and the ones the
// record knows.
absl::StatusOr<std::string> EndBoot(const SandboxRecord& r) {
  std::vector<std::string> ended;
  if (r.vm) {
    RETURN_IF_ERROR(qemu::StopVm(*r.vm));
    ended.push_back(absl::StrCat("QEMU pid ", r.vm->qemu.pid));
  }
  ASSIGN_OR_RETURN(std::vector<ProcessIdentity> strays, qemu::CollectStrays(r.run_dir));
  for (const ProcessIdentity& p : strays) {
    ended.push_back(absl::StrCat(p.exe.substr(p.exe.rfind('/') + 1), " pid ", p.pid));
  }
  return ended.empty() ? std::string("nothing was running")
                       : absl::StrCat("ended ", absl::StrJoin(ended, ", "));
}

}  // namespace

// ---- the record ----

Json SandboxToJson(const SandboxRecord& r) {
  Json j = {{"id", r.id},         {"created", r.created}, {"status", r.status},
            {"intent", r.intent}, {"run_dir", r.run_dir}, {"note", r.note}};
  j["vm"] = r.vm ? qemu::VmToJson(*r.vm) : Json(nullptr);
  j["network"] = r.network ? network::PodNetworkToJson(*r.network) : Json(nullptr);
  return j;
}

absl::StatusOr<SandboxRecord> SandboxFromJson(const Json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("sandbox record: not an object");
  const persist::Fields f(j, "sandbox record");
  SandboxRecord r;
  for (auto [field, out] : {std::pair<const char*, std::string*>{"id", &r.id},
                            {"created", &r.created},
                            {"status", &r.status},
                            {"intent", &r.intent},
                            {"run_dir", &r.run_dir},
                            {"note", &r.note}}) {
    ASSIGN_OR_RETURN(*out, f.String(field));
  }
  if (r.status != kCreating && r.status != kRunning && r.status != kStopped) {
    return absl::InvalidArgumentError(absl::StrCat("sandbox record: status \"", r.status,
                                                   "\" is not creating, running or stopped"));
  }
  if (!r.intent.empty() && r.intent != kStepBoot && r.intent != kStepStop &&
      r.intent != kStepDelete) {
    return absl::InvalidArgumentError(absl::StrCat("sandbox record: intent \"", r.intent,
                                                   "\" is not boot, stop, delete or empty"));
  }
  auto vm = j.find("vm");
  if (vm == j.end() || !(vm->is_null() || vm->is_object()))
    return f.Missing("vm", "null or an object");
  if (vm->is_object()) {
    absl::StatusOr<qemu::RunningVm> parsed = qemu::VmFromJson(*vm);
    if (!parsed.ok()) return Annotate(parsed.status(), "sandbox record");
    r.vm = *std::move(parsed);
  }
  // Absent from records written before pod networking: none.
  if (auto net = j.find("network"); net != j.end() && !net->is_null()) {
    absl::StatusOr<network::PodNetwork> parsed = network::PodNetworkFromJson(*net);
    if (!parsed.ok()) return Annotate(parsed.status(), "sandbox record");
    r.network = *std::move(parsed);
  }
  return r;
}

absl::Status ValidateSandboxId(absl::string_view id) {
  if (id.size() > kMaxIdLength) {
    return absl::InvalidArgumentError(absl::StrCat("invalid container id \"", id.substr(0, 16),
                                                   "...\": ", id.size(), " characters, at most ",
                                                   kMaxIdLength));
  }
  bool ok = !id.empty() && id.front() != '.' && std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '_' || c == '+' || c == '-' || c == '.';
  });
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("invalid sandbox id \"", id,
                   "\": letters, digits, _ + - and . only, not starting with a dot"));
}

// ---- an opened sandbox ----

Sandbox::Sandbox(persist::Lock lock, persist::Store store, SandboxRecord record,
                 qemu::HotplugOptions options)
    : lock_(std::move(lock)),
      store_(std::move(store)),
      record_(std::move(record)),
      options_(std::move(options)) {}

Sandbox::~Sandbox() = default;

absl::Status Sandbox::Save() {
  return store_.Save(record_.id + "/" + kRecordName, kSandboxFormat, kSandboxVersion,
                     SandboxToJson(record_));
}

absl::StatusOr<qemu::Hotplug*> Sandbox::hotplug() {
  if (hotplug_) return &*hotplug_;
  return absl::FailedPreconditionError(
      absl::StrCat("sandbox ", record_.id, " is not running: ", not_running_));
}

absl::Status Sandbox::SetVmRunning(bool running) {
  RETURN_IF_ERROR(hotplug().status());  // connected, and the VM runs
  return Annotate(
      qmp_->Execute(running ? "cont" : "stop", nlohmann::json::object(), absl::Now() + kQmpTimeout)
          .status(),
      absl::StrCat("sandbox ", record_.id, running ? ": resume the VM" : ": pause the VM"));
}

absl::StatusOr<std::vector<int>> Sandbox::VcpuThreads() {
  RETURN_IF_ERROR(hotplug().status());
  ASSIGN_OR_RETURN(nlohmann::json cpus, qmp_->Execute("query-cpus-fast", nlohmann::json::object(),
                                                      absl::Now() + kQmpTimeout));
  std::vector<int> out;
  if (!cpus.is_array()) return out;
  for (const nlohmann::json& c : cpus) {
    if (c.is_object() && c.contains("thread-id") && c["thread-id"].is_number_integer()) {
      out.push_back(c["thread-id"].get<int>());
    }
  }
  return out;
}

absl::Status Sandbox::Reconcile(bool connect) {
  SandboxRecord& r = record_;
  if (r.intent == kStepBoot) {
    // A boot killed half way: undo it. The engine sees a failed create and deletes.
    ASSIGN_OR_RETURN(std::string ended, EndBoot(r));
    r.vm.reset();
    r.status = kStopped;
    r.intent.clear();
    r.note = absl::StrCat("the boot was interrupted and rolled back (", ended, ")");
    report_.actions.push_back(r.note);
    RETURN_IF_ERROR(Save());
  } else if (r.intent == kStepStop) {
    if (r.vm) RETURN_IF_ERROR(qemu::StopVm(*r.vm));
    RETURN_IF_ERROR(ReleasePodNetwork(r));
    r.status = kStopped;
    r.intent.clear();
    report_.actions.push_back("the interrupted stop was carried through");
    RETURN_IF_ERROR(Save());
  }
  // kStepDelete is the store's to finish (the sandbox goes away).
  if (r.status == kCreating) {
    not_running_ = "it is being created";
    return absl::OkStatus();
  }
  if (r.status != kRunning || !r.vm) {
    not_running_ = r.note.empty() ? "it is stopped" : absl::StrCat("it is stopped: ", r.note);
    return absl::OkStatus();
  }
  Liveness live = CheckQemu(*r.vm);
  if (live.status == kStopped) {
    r.status = kStopped;
    r.note = live.detail;
    not_running_ = absl::StrCat("it is stopped: ", live.detail);
    report_.actions.push_back(live.detail);
    // Its taps went with it; the filters that fed them go now.
    if (absl::Status st = ReleasePodNetwork(r); !st.ok()) LogWarning(st.message());
    return Save();
  }
  if (live.status == kLost) {
    not_running_ = absl::StrCat("it is lost: ", live.detail);
    return absl::OkStatus();
  }
  if (!connect) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<qmp::Client>> qmp =
      qmp::Client::Connect(r.vm->qmp_socket(), absl::Now() + kQmpConnectTimeout);
  if (!qmp.ok()) return Annotate(qmp.status(), absl::StrCat("sandbox ", r.id, ": QMP"));
  qmp_ = *std::move(qmp);
  qemu::HotplugOptions options = options_;
  options.checkpoint = [this] { return Save(); };
  hotplug_.emplace(*qmp_, *r.vm, std::move(options));
  ASSIGN_OR_RETURN(qemu::ReconcileReport report, hotplug_->Reconcile());
  report_.run_state = report.run_state;
  for (std::string& a : report.actions) report_.actions.push_back(std::move(a));
  if (r.network) {
    for (const network::Endpoint& e : r.network->endpoints) {
      if (!e.nic.empty() && r.vm->hotplug.Find(e.nic) == nullptr) {
        report_.actions.push_back(absl::StrCat("pod network: the NIC ", e.nic, " of interface ",
                                               e.interface, " is no longer plugged"));
      }
    }
  }
  return absl::OkStatus();
}

// ---- the store ----

SandboxStore::SandboxStore(SandboxStoreOptions options)
    : options_(std::move(options)), store_(options_.root) {}

std::string SandboxStore::SocketBase() const { return options_.root + "/.vm"; }

absl::StatusOr<persist::Lock> SandboxStore::LockSandbox(const std::string& id,
                                                        persist::Lock::Mode mode,
                                                        absl::string_view purpose,
                                                        std::optional<absl::Duration> wait) const {
  absl::StatusOr<persist::Lock> lock =
      persist::Lock::Acquire(Dir(id) + "/lock", mode, wait.value_or(options_.lock_wait),
                             absl::StrCat("sandbox ", id), purpose);
  if (absl::IsNotFound(lock.status())) {
    return absl::NotFoundError(absl::StrCat("sandbox ", id, " does not exist"));
  }
  return lock;
}

absl::Status SandboxStore::WhyNoRecord(const std::string& id,
                                       const absl::Status& load_error) const {
  if (!absl::IsNotFound(load_error)) return load_error;
  // No record: was there one that could not be read?
  absl::StatusOr<std::vector<std::string>> names = store_.List(id);
  if (names.ok()) {
    for (const std::string& n : *names) {
      if (absl::StartsWith(n, std::string(kRecordName) + ".corrupt-")) {
        return absl::DataLossError(
            absl::StrCat("sandbox ", id, ": its record was unreadable and is ",
                         store_.PathOf(id + "/" + n), "; delete --force removes it"));
      }
    }
  }
  return absl::NotFoundError(absl::StrCat("sandbox ", id, " does not exist"));
}

absl::Status SandboxStore::RemoveSandboxDir(const std::string& id) const {
  std::error_code ec;
  std::filesystem::remove_all(Dir(id), ec);
  if (ec) return ErrnoError(ec.value(), "remove " + Dir(id));
  return absl::OkStatus();
}

absl::Status SandboxStore::Create(qemu::VmSpec spec, bool wait_guest) {
  const std::string id = spec.sandbox_id;
  RETURN_IF_ERROR(ValidateSandboxId(id));
  spec.socket_base = SocketBase();
  RETURN_IF_ERROR(MakeDirectories(Dir(id), 0700));
  ASSIGN_OR_RETURN(persist::Lock lock, LockSandbox(id, persist::Lock::kExclusive, "create"));
  absl::StatusOr<Json> existing = store_.Load(Key(id), kSandboxFormat, kSandboxVersion);
  if (existing.ok())
    return absl::AlreadyExistsError(absl::StrCat("sandbox ", id, " already exists"));
  if (absl::Status why = WhyNoRecord(id, existing.status()); !absl::IsNotFound(why)) {
    return absl::AlreadyExistsError(
        absl::StrCat("sandbox ", id, " already exists: ", why.message()));
  }
  SandboxRecord r{.id = id,
                  .created = Now(),
                  .status = kCreating,
                  .intent = kStepBoot,
                  .run_dir = qemu::RunDirFor(spec.socket_base, id)};
  // A run directory this call did not make is never touched by it, even to clean up: left by a
  // sandbox of this id whose end was never seen (its processes may still run).
  if (::access(r.run_dir.c_str(), F_OK) == 0) {
    (void)RemoveSandboxDir(id);
    return absl::FailedPreconditionError(absl::StrCat(
        "sandbox ", id, ": its run directory ", r.run_dir,
        " already exists (left by an earlier sandbox of this id); remove it once nothing uses it"));
  }
  auto save = [&] {
    return store_.Save(Key(id), kSandboxFormat, kSandboxVersion, SandboxToJson(r));
  };
  if (absl::Status st = save(); !st.ok()) {
    (void)RemoveSandboxDir(id);
    return st;
  }
  RUNVM_FAILPOINT("sandbox.create.after-intent");
  // From here a failure undoes everything: nothing of a failed create is left.
  auto fail = [&](absl::Status cause) {
    if (r.vm) (void)qemu::StopVm(*r.vm);
    (void)qemu::CollectStrays(r.run_dir);
    (void)RemoveSandboxDir(id);
    return cause;
  };
  absl::StatusOr<qemu::RunningVm> vm = qemu::StartVm(spec);
  if (!vm.ok()) return fail(vm.status());
  r.vm = *std::move(vm);
  RUNVM_FAILPOINT("sandbox.create.after-boot");
  r.status = kRunning;
  r.intent.clear();
  if (absl::Status st = save(); !st.ok()) return fail(st);
  if (wait_guest) {
    absl::StatusOr<AgentClient> agent =
        AgentClient::Connect(r.vm->agent_socket(), absl::Now() + kGuestReadyTimeout);
    if (!agent.ok()) return fail(agent.status());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Sandbox>> SandboxStore::Open(const std::string& id,
                                                            absl::string_view purpose,
                                                            bool connect) {
  RETURN_IF_ERROR(ValidateSandboxId(id));
  if (::access(Dir(id).c_str(), F_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("sandbox ", id, " does not exist"));
  }
  ASSIGN_OR_RETURN(persist::Lock lock, LockSandbox(id, persist::Lock::kExclusive, purpose));
  absl::StatusOr<Json> data = store_.Load(Key(id), kSandboxFormat, kSandboxVersion);
  if (!data.ok()) return WhyNoRecord(id, data.status());
  absl::StatusOr<SandboxRecord> record = SandboxFromJson(*data);
  if (!record.ok()) return Annotate(record.status(), store_.PathOf(Key(id)));
  if (record->intent == kStepDelete) {
    // A delete was killed half way: finish it, and the sandbox is gone.
    if (record->vm) RETURN_IF_ERROR(qemu::StopVm(*record->vm));
    RETURN_IF_ERROR(ReleasePodNetwork(*record));
    RETURN_IF_ERROR(qemu::CollectStrays(record->run_dir).status());
    RETURN_IF_ERROR(RemoveSandboxDir(id));
    return absl::NotFoundError(
        absl::StrCat("sandbox ", id, " does not exist (its interrupted delete was finished)"));
  }
  std::unique_ptr<Sandbox> sandbox(
      new Sandbox(std::move(lock), store_, *std::move(record), options_.hotplug));
  RETURN_IF_ERROR(sandbox->Reconcile(connect));
  for (const std::string& a : sandbox->report().actions) {
    LogInfo(absl::StrCat("sandbox ", id, ": reconciled: ", a));
  }
  return sandbox;
}

absl::Status SandboxStore::Stop(const std::string& id) {
  ASSIGN_OR_RETURN(std::unique_ptr<Sandbox> sb, Open(id, "stop", /*connect=*/false));
  SandboxRecord& r = sb->record();
  if (r.status != kRunning || !r.vm) return absl::OkStatus();
  r.intent = kStepStop;
  RETURN_IF_ERROR(sb->Save());
  RUNVM_FAILPOINT("sandbox.stop.after-intent");
  // StopVm never signals a process whose identity changed, so a lost sandbox is safe here.
  RETURN_IF_ERROR(qemu::StopVm(*r.vm));
  RETURN_IF_ERROR(ReleasePodNetwork(r));
  r.status = kStopped;
  r.intent.clear();
  r.note = "stopped by runvm";
  return sb->Save();
}

absl::Status SandboxStore::Delete(const std::string& id, bool force) {
  absl::StatusOr<std::unique_ptr<Sandbox>> opened = Open(id, "delete", /*connect=*/false);
  if (absl::IsNotFound(opened.status())) {
    return force ? absl::OkStatus() : opened.status();
  }
  if (absl::IsDataLoss(opened.status()) && force) {
    // The record is unreadable: whatever carries the sandbox's marker still goes.
    ASSIGN_OR_RETURN(persist::Lock lock, LockSandbox(id, persist::Lock::kExclusive, "delete"));
    RETURN_IF_ERROR(qemu::CollectStrays(qemu::RunDirFor(SocketBase(), id)).status());
    RETURN_IF_ERROR(RemoveSandboxDir(id));
    qemu::RemoveSocketBaseIfEmpty(SocketBase());
    return absl::OkStatus();
  }
  if (!opened.ok()) return opened.status();
  SandboxRecord& r = (*opened)->record();
  if (r.status == kRunning && !force) {
    Liveness live = r.vm ? CheckQemu(*r.vm) : Liveness{kStopped, ""};
    if (live.status == kRunning) {
      return absl::FailedPreconditionError(
          absl::StrCat("sandbox ", id, " is running: stop it first, or delete --force"));
    }
  }
  r.intent = kStepDelete;
  RETURN_IF_ERROR((*opened)->Save());
  RUNVM_FAILPOINT("sandbox.delete.after-intent");
  if (r.vm) RETURN_IF_ERROR(qemu::StopVm(*r.vm));
  RETURN_IF_ERROR(ReleasePodNetwork(r));
  RETURN_IF_ERROR(qemu::CollectStrays(r.run_dir).status());
  RUNVM_FAILPOINT("sandbox.delete.after-stop");
  RETURN_IF_ERROR(RemoveSandboxDir(id));
  qemu::RemoveSocketBaseIfEmpty(SocketBase());
  return absl::OkStatus();
}

absl::StatusOr<SandboxView> SandboxStore::View(const std::string& id) {
  SandboxView view{.id = id};
  absl::StatusOr<Json> data = store_.Load(Key(id), kSandboxFormat, kSandboxVersion);
  if (!data.ok()) {
    absl::Status why = WhyNoRecord(id, data.status());
    if (absl::IsNotFound(why)) return why;
    view.status = "unreadable";
    view.detail = std::string(why.message());
    return view;
  }
  absl::StatusOr<SandboxRecord> record = SandboxFromJson(*data);
  if (!record.ok()) {
    view.status = "unreadable";
    view.detail = absl::StrCat(store_.PathOf(Key(id)), ": ", record.status().message());
    return view;
  }
  view.status = record->status;
  view.detail = record->note;
  if (record->status == kRunning && record->vm) {
    Liveness live = CheckQemu(*record->vm);
    view.status = live.status;
    if (!live.detail.empty()) view.detail = live.detail;
  }
  view.record = *std::move(record);
  return view;
}

absl::StatusOr<SandboxView> SandboxStore::State(const std::string& id) {
  RETURN_IF_ERROR(ValidateSandboxId(id));
  if (::access(Dir(id).c_str(), F_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("sandbox ", id, " does not exist"));
  }
  {
    ASSIGN_OR_RETURN(persist::Lock lock, LockSandbox(id, persist::Lock::kShared, "state"));
    ASSIGN_OR_RETURN(SandboxView view, View(id));
    // An unreadable record is an error here (list shows it as a row).
    if (!view.record) return absl::DataLossError(view.detail);
    const bool pending =
        view.record && (!view.record->intent.empty() ||
                        (view.record->vm && view.record->vm->hotplug.intent.has_value()));
    if (!pending) return view;
  }
  // An operation was interrupted: settle it first, so that what is shown is what is.
  { ASSIGN_OR_RETURN(std::unique_ptr<Sandbox> sb, Open(id, "state")); }
  ASSIGN_OR_RETURN(persist::Lock lock, LockSandbox(id, persist::Lock::kShared, "state"));
  return View(id);
}

absl::StatusOr<std::vector<SandboxView>> SandboxStore::List() {
  std::vector<SandboxView> out;
  ASSIGN_OR_RETURN(std::vector<std::string> names, store_.List(""));
  for (const std::string& id : names) {
    struct stat st;
    if (id.front() == '.' || ::stat(Dir(id).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    absl::StatusOr<persist::Lock> lock =
        LockSandbox(id, persist::Lock::kShared, "list", absl::ZeroDuration());
    if (!lock.ok()) {
      if (absl::IsNotFound(lock.status())) continue;  // deleted meanwhile
      out.push_back({.id = id, .status = "busy", .detail = std::string(lock.status().message())});
      continue;
    }
    absl::StatusOr<SandboxView> view = View(id);
    if (view.ok()) out.push_back(*std::move(view));
  }
  return out;
}

}  // namespace runvm
