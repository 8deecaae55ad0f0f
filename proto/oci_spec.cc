#include "proto/oci_spec.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "nlohmann/json.hpp"

namespace runvm::oci {
namespace {

using Json = nlohmann::json;

absl::Status Wrong(const std::string& path, absl::string_view expected, const Json& got) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": expected ", expected, ", got ", got.type_name()));
}

// One JSON value into one C++ value; the error names `path`.
absl::Status Get(const Json& j, const std::string& path, std::string* out) {
  if (!j.is_string()) return Wrong(path, "a string", j);
  *out = j.get<std::string>();
  return absl::OkStatus();
}
absl::Status Get(const Json& j, const std::string& path, bool* out) {
  if (!j.is_boolean()) return Wrong(path, "a boolean", j);
  *out = j.get<bool>();
  return absl::OkStatus();
}
absl::Status Get(const Json& j, const std::string& path, uint64_t* out) {
  if (!j.is_number_unsigned()) return Wrong(path, "an unsigned integer", j);
  *out = j.get<uint64_t>();
  return absl::OkStatus();
}
absl::Status Get(const Json& j, const std::string& path, uint32_t* out) {
  uint64_t v = 0;
  RETURN_IF_ERROR(Get(j, path, &v));
  if (v > UINT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", v, " does not fit 32 bits"));
  }
  *out = static_cast<uint32_t>(v);
  return absl::OkStatus();
}
absl::Status Get(const Json& j, const std::string& path, int64_t* out) {
  if (!j.is_number_integer()) return Wrong(path, "an integer", j);
  if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", j.dump(), " does not fit 63 bits"));
  }
  *out = j.get<int64_t>();
  return absl::OkStatus();
}
absl::Status Get(const Json& j, const std::string& path, int* out) {
  if (!j.is_number_integer()) return Wrong(path, "an integer", j);
  *out = j.get<int>();
  return absl::OkStatus();
}
// The structures, declared here so that the templates below find them.
absl::Status Get(const Json& j, const std::string& p, User* u);
absl::Status Get(const Json& j, const std::string& p, Capabilities* c);
absl::Status Get(const Json& j, const std::string& p, Rlimit* r);
absl::Status Get(const Json& j, const std::string& p, Mount* m);
absl::Status Get(const Json& j, const std::string& p, Namespace* n);
absl::Status Get(const Json& j, const std::string& p, SeccompArg* a);
absl::Status Get(const Json& j, const std::string& p, SeccompSyscall* s);
absl::Status Get(const Json& j, const std::string& p, Seccomp* s);
absl::Status Get(const Json& j, const std::string& p, Process* pr);
absl::Status Get(const Json& j, const std::string& p, Root* r);
absl::Status Get(const Json& j, const std::string& p, Linux* l);
absl::Status Get(const Json& j, const std::string& p, CpuResources* c);
absl::Status Get(const Json& j, const std::string& p, MemoryResources* m);
absl::Status Get(const Json& j, const std::string& p, PidsResources* r);
absl::Status Get(const Json& j, const std::string& p, DeviceRule* r);
absl::Status Get(const Json& j, const std::string& p, Resources* r);

template <typename T>
absl::Status Get(const Json& j, const std::string& path, std::optional<T>* out) {
  T v{};
  RETURN_IF_ERROR(Get(j, path, &v));
  *out = v;
  return absl::OkStatus();
}
template <typename T>
absl::Status Get(const Json& j, const std::string& path, std::vector<T>* out) {
  if (!j.is_array()) return Wrong(path, "a list", j);
  out->clear();
  for (size_t i = 0; i < j.size(); ++i) {
    T v{};
    RETURN_IF_ERROR(Get(j[i], absl::StrCat(path, "[", i, "]"), &v));
    out->push_back(std::move(v));
  }
  return absl::OkStatus();
}
absl::Status Get(const Json& j, const std::string& path, std::map<std::string, std::string>* out) {
  if (!j.is_object()) return Wrong(path, "an object", j);
  for (auto it = j.begin(); it != j.end(); ++it) {
    RETURN_IF_ERROR(Get(it.value(), absl::StrCat(path, ".", it.key()), &(*out)[it.key()]));
  }
  return absl::OkStatus();
}

// An optional field of an object: absent or null leaves `out` as it is.
template <typename T>
absl::Status Field(const Json& obj, const std::string& path, const char* key, T* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  return Get(*it, path.empty() ? key : absl::StrCat(path, ".", key), out);
}

absl::Status Get(const Json& j, const std::string& p, User* u) {
  if (!j.is_object()) return Wrong(p, "an object", j);
  RETURN_IF_ERROR(Field(j, p, "uid", &u->uid));
  RETURN_IF_ERROR(Field(j, p, "gid", &u->gid));
  RETURN_IF_ERROR(Field(j, p, "additionalGids", &u->additional_gids));
  return Field(j, p, "umask", &u->umask);
}
absl::Status Get(const Json& j, const std::string& p, Capabilities* c) {
  if (!j.is_object()) return Wrong(p, "an object", j);
  RETURN_IF_ERROR(Field(j, p, "bounding", &c->bounding));
  RETURN_IF_ERROR(Field(j, p, "effective", &c->effective));
  RETURN_IF_ERROR(Field(j, p, "inheritable", &c->inheritable));
  RETURN_IF_ERROR(Field(j, p, "permitted", &c->permitted));
  return Field(j, p, "ambient", &c->ambient);
}
absl::Status Get(const Json& j, const std::string& p, Rlimit* r) {
  if (!j.is_object()) return Wrong(p, "an object", j);
  RETURN_IF_ERROR(Field(j, p, "type", &r->type));
  RETURN_IF_ERROR(Field(j, p, "hard", &r->hard));
  return Field(j, p, "soft", &r->soft);
}
absl::Status Get(const Json& j, const std::string& p, Process* pr) {
  if (!j.is_object()) return Wrong(p, "an object", j);
  RETURN_IF_ERROR(Field(j, p, "terminal", &pr->terminal));
  RETURN_IF_ERROR(Field(j, p, "user", &pr->user));
  RETURN_IF_ERROR(Field(j, p, "args", &pr->args));
  RETURN_IF_ERROR(Field(j, p, "env", &pr->env));
  RETURN_IF_ERROR(Field(j, p, "cwd", &pr->cwd));
  RETURN_IF_ERROR(Field(j, p, "capabilities", &pr->capabilities));
  RETURN_IF_ERROR(Field(j, p, "rlimits", &pr->rlimits));
  RETURN_IF_ERROR(Field(j, p, "noNewPrivileges", &pr->no_new_privileges));
  RETURN_IF_ERROR(Field(j, p, "selinuxLabel", &pr->selinux_label));
  return Field(j, p, "oomScoreAdj", &pr->oom_score_adj);
}
absl::Status Get(const Json& j, const std::string& p, Root* r) {
  if (!j.is_object()) return Wrong(p, "an object", j);
  RETURN_IF_ERROR(Field(j, p, "path", &r->path));
  return Field(j, p, "readonly", &r->readonly);
}
absl::Status Get(const Json& j, const std::string& p, Mount* m) {
  if (!j.is_object()) return Wrong(p, "an object", j);
  RETURN_IF_ERROR(Field(j, p, "destination", &m->destination));
  RETURN_IF_ERROR(Field(j, p, "type", &m->type));
  RETURN_IF_ERROR(Field(j, p, "source", &m->source));
  return Field(j, p, "options", &m->options);
}
absl::Status Get(const Json& j, const std::string& p, Namespace* n) {
  if (!j.is_object()) return Wrong(p, "an object", j);
  RETURN_IF_ERROR(Field(j, p, "type", &n->type));
  return Field(j, p, "path", &n->path);
}
absl::Status Get(const Json& j, const std::string& p, SeccompArg* a) {
  if (!j.is_object()) return Wrong(p, "an object", j);
  RETURN_IF_ERROR(Field(j, p, "index", &a->index));
  RETURN_IF_ERROR(Field(j, p, "value", &a->value));
  RETURN_IF_ERROR(Field(j, p, "valueTwo", &a->value_two));
  return Field(j, p, "op", &a->op);
}
absl::Status Get(const Json& j, const std::string& p, SeccompSyscall* s) {
  if (!j.is_object()) return Wrong(p, "an object", j);
  RETURN_IF_ERROR(Field(j, p, "names", &s->names));
  RETURN_IF_ERROR(Field(j, p, "action", &s->action));
  RETURN_IF_ERROR(Field(j, p, "errnoRet", &s->errno_ret));
  return Field(j, p, "args", &s->args);
}
absl::Status Get(const Json& j, const std::string& p, Seccomp* s) {
  if (!j.is_object()) return Wrong(p, "an object", j);
  RETURN_IF_ERROR(Field(j, p, "defaultAction", &s->default_action));
  RETURN_IF_ERROR(Field(j, p, "defaultErrnoRet", &s->default_errno_ret));
  RETURN_IF_ERROR(Field(j, p, "architectures", &s->architectures));
  return Field(j, p, "syscalls", &s->syscalls);
}
absl::Status Get(const Json& j, const std::string& p, Linux* l) {
  if (!j.is_object()) return Wrong(p, "an object", j);
  RETURN_IF_ERROR(Field(j, p, "namespaces", &l->namespaces));
  RETURN_IF_ERROR(Field(j, p, "cgroupsPath", &l->cgroups_path));
  RETURN_IF_ERROR(Field(j, p, "resources", &l->resources));
  RETURN_IF_ERROR(Field(j, p, "seccomp", &l->seccomp));
  RETURN_IF_ERROR(Field(j, p, "maskedPaths", &l->masked_paths));
  RETURN_IF_ERROR(Field(j, p, "readonlyPaths", &l->readonly_paths));
  RETURN_IF_ERROR(Field(j, p, "mountLabel", &l->mount_label));
  return Field(j, p, "sysctl", &l->sysctl);
}

absl::Status Get(const Json& j, const std::string& p, CpuResources* c) {
  if (!j.is_object()) return Wrong(p, "an object", j);
  RETURN_IF_ERROR(Field(j, p, "shares", &c->shares));
  RETURN_IF_ERROR(Field(j, p, "quota", &c->quota));
  RETURN_IF_ERROR(Field(j, p, "period", &c->period));
  RETURN_IF_ERROR(Field(j, p, "cpus", &c->cpus));
  return Field(j, p, "mems", &c->mems);
}
absl::Status Get(const Json& j, const std::string& p, MemoryResources* m) {
  if (!j.is_object()) return Wrong(p, "an object", j);
  RETURN_IF_ERROR(Field(j, p, "limit", &m->limit));
  RETURN_IF_ERROR(Field(j, p, "reservation", &m->reservation));
  return Field(j, p, "swap", &m->swap);
}
absl::Status Get(const Json& j, const std::string& p, PidsResources* r) {
  if (!j.is_object()) return Wrong(p, "an object", j);
  return Field(j, p, "limit", &r->limit);
}
absl::Status Get(const Json& j, const std::string& p, DeviceRule* r) {
  if (!j.is_object()) return Wrong(p, "an object", j);
  RETURN_IF_ERROR(Field(j, p, "allow", &r->allow));
  RETURN_IF_ERROR(Field(j, p, "type", &r->type));
  RETURN_IF_ERROR(Field(j, p, "major", &r->major));
  RETURN_IF_ERROR(Field(j, p, "minor", &r->minor));
  RETURN_IF_ERROR(Field(j, p, "access", &r->access));
  if (r->type.empty()) r->type = "a";
  if (r->access.empty()) r->access = "rwm";
  if (r->type != "a" && r->type != "c" && r->type != "b") {
    return absl::InvalidArgumentError(
        absl::StrCat(p, ".type: \"", r->type, "\" is not one of a, c, b"));
  }
  if (r->access.find_first_not_of("rwm") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(p, ".access: \"", r->access, "\" is not made of r, w, m"));
  }
  for (auto [name, v] : {std::pair{"major", &r->major}, std::pair{"minor", &r->minor}}) {
    if (*v && (**v < -1 || **v > 0xffffffffll)) {
      return absl::InvalidArgumentError(
          absl::StrCat(p, ".", name, ": ", **v, " is no device number"));
    }
  }
  return absl::OkStatus();
}
absl::Status Get(const Json& j, const std::string& p, Resources* r) {
  if (!j.is_object()) return Wrong(p, "an object", j);
  RETURN_IF_ERROR(Field(j, p, "devices", &r->devices));
  RETURN_IF_ERROR(Field(j, p, "cpu", &r->cpu));
  RETURN_IF_ERROR(Field(j, p, "memory", &r->memory));
  RETURN_IF_ERROR(Field(j, p, "pids", &r->pids));
  return r->Validate();
}

nlohmann::ordered_json ResourcesJson(const Resources& r) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (r.cpu) {
    auto& c = j["cpu"] = nlohmann::ordered_json::object();
    if (r.cpu->shares) c["shares"] = *r.cpu->shares;
    if (r.cpu->quota) c["quota"] = *r.cpu->quota;
    if (r.cpu->period) c["period"] = *r.cpu->period;
    if (!r.cpu->cpus.empty()) c["cpus"] = r.cpu->cpus;
    if (!r.cpu->mems.empty()) c["mems"] = r.cpu->mems;
  }
  if (r.memory) {
    auto& m = j["memory"] = nlohmann::ordered_json::object();
    if (r.memory->limit) m["limit"] = *r.memory->limit;
    if (r.memory->reservation) m["reservation"] = *r.memory->reservation;
    if (r.memory->swap) m["swap"] = *r.memory->swap;
  }
  if (r.pids) j["pids"] = {{"limit", r.pids->limit}};
  if (!r.devices.empty()) {
    auto& d = j["devices"] = nlohmann::ordered_json::array();
    for (const DeviceRule& rule : r.devices) {
      nlohmann::ordered_json rj = {
          {"allow", rule.allow}, {"type", rule.type}, {"access", rule.access}};
      if (rule.major) rj["major"] = *rule.major;
      if (rule.minor) rj["minor"] = *rule.minor;
      d.push_back(std::move(rj));
    }
  }
  return j;
}

Json CapsJson(const Capabilities& c) {
  return {{"bounding", c.bounding},
          {"effective", c.effective},
          {"inheritable", c.inheritable},
          {"permitted", c.permitted},
          {"ambient", c.ambient}};
}

constexpr const char* kNamespaceTypes[] = {"pid", "network", "mount",  "ipc",
                                           "uts", "user",    "cgroup", "time"};

bool KnownRlimit(absl::string_view t) {
  static const std::set<std::string, std::less<>> known = {
      "RLIMIT_AS",     "RLIMIT_CORE",   "RLIMIT_CPU",        "RLIMIT_DATA",
      "RLIMIT_FSIZE",  "RLIMIT_LOCKS",  "RLIMIT_MEMLOCK",    "RLIMIT_MSGQUEUE",
      "RLIMIT_NICE",   "RLIMIT_NOFILE", "RLIMIT_NPROC",      "RLIMIT_RSS",
      "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK"};
  return known.count(t) != 0;
}

}  // namespace

absl::StatusOr<Spec> ParseSpec(absl::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("config.json: not valid JSON");
  if (!j.is_object()) return Wrong("config.json", "an object", j);
  Spec s;
  RETURN_IF_ERROR(Field(j, "", "ociVersion", &s.oci_version));
  RETURN_IF_ERROR(Field(j, "", "process", &s.process));
  RETURN_IF_ERROR(Field(j, "", "root", &s.root));
  RETURN_IF_ERROR(Field(j, "", "hostname", &s.hostname));
  RETURN_IF_ERROR(Field(j, "", "mounts", &s.mounts));
  RETURN_IF_ERROR(Field(j, "", "linux", &s.linux));
  RETURN_IF_ERROR(Field(j, "", "annotations", &s.annotations));
  return s;
}

absl::Status Spec::Validate() const {
  if (process.args.empty()) {
    return absl::InvalidArgumentError("process.args: at least the program is needed");
  }
  if (!absl::StartsWith(process.cwd, "/")) {
    return absl::InvalidArgumentError(
        absl::StrCat("process.cwd: \"", process.cwd, "\" is not an absolute path"));
  }
  if (root.path.empty()) return absl::InvalidArgumentError("root.path: missing");
  std::set<std::string> seen;
  for (size_t i = 0; i < linux.namespaces.size(); ++i) {
    const std::string& t = linux.namespaces[i].type;
    if (std::find(std::begin(kNamespaceTypes), std::end(kNamespaceTypes), t) ==
        std::end(kNamespaceTypes)) {
      return absl::InvalidArgumentError(
          absl::StrCat("linux.namespaces[", i, "].type: unknown namespace \"", t, "\""));
    }
    if (!seen.insert(t).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("linux.namespaces[", i, "]: namespace \"", t, "\" given twice"));
    }
  }
  for (size_t i = 0; i < mounts.size(); ++i) {
    if (!absl::StartsWith(mounts[i].destination, "/")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "mounts[", i, "].destination: \"", mounts[i].destination, "\" is not an absolute path"));
    }
  }
  for (size_t i = 0; i < process.rlimits.size(); ++i) {
    if (!KnownRlimit(process.rlimits[i].type)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "process.rlimits[", i, "].type: unknown rlimit \"", process.rlimits[i].type, "\""));
    }
  }
  if (process.capabilities) {
    const Capabilities& c = *process.capabilities;
    for (const auto* set : {&c.bounding, &c.effective, &c.inheritable, &c.permitted, &c.ambient}) {
      for (const std::string& name : *set) {
        if (!absl::StartsWith(name, "CAP_")) {
          return absl::InvalidArgumentError(
              absl::StrCat("process.capabilities: \"", name, "\" is not a capability name"));
        }
      }
    }
  }
  return absl::OkStatus();
}

std::string SpecToJson(const Spec& s, int indent) {
  nlohmann::ordered_json j;
  j["ociVersion"] = s.oci_version;
  auto& p = j["process"];
  p["terminal"] = s.process.terminal;
  p["user"] = {{"uid", s.process.user.uid}, {"gid", s.process.user.gid}};
  if (!s.process.user.additional_gids.empty()) {
    p["user"]["additionalGids"] = s.process.user.additional_gids;
  }
  if (s.process.user.umask) p["user"]["umask"] = *s.process.user.umask;
  p["args"] = s.process.args;
  p["env"] = s.process.env;
  p["cwd"] = s.process.cwd;
  if (s.process.capabilities) p["capabilities"] = CapsJson(*s.process.capabilities);
  p["rlimits"] = nlohmann::ordered_json::array();
  for (const Rlimit& r : s.process.rlimits) {
    p["rlimits"].push_back({{"type", r.type}, {"hard", r.hard}, {"soft", r.soft}});
  }
  p["noNewPrivileges"] = s.process.no_new_privileges;
  if (s.process.oom_score_adj) p["oomScoreAdj"] = *s.process.oom_score_adj;
  if (!s.process.selinux_label.empty()) p["selinuxLabel"] = s.process.selinux_label;
  j["root"] = {{"path", s.root.path}, {"readonly", s.root.readonly}};
  j["hostname"] = s.hostname;
  j["mounts"] = nlohmann::ordered_json::array();
  for (const Mount& m : s.mounts) {
    nlohmann::ordered_json mj = {
        {"destination", m.destination}, {"type", m.type}, {"source", m.source}};
    if (!m.options.empty()) mj["options"] = m.options;
    j["mounts"].push_back(std::move(mj));
  }
  auto& l = j["linux"];
  l["namespaces"] = nlohmann::ordered_json::array();
  for (const Namespace& n : s.linux.namespaces) {
    nlohmann::ordered_json nj = {{"type", n.type}};
    if (!n.path.empty()) nj["path"] = n.path;
    l["namespaces"].push_back(std::move(nj));
  }
  if (!s.linux.cgroups_path.empty()) l["cgroupsPath"] = s.linux.cgroups_path;
  if (s.linux.resources) l["resources"] = ResourcesJson(*s.linux.resources);
  if (!s.linux.masked_paths.empty()) l["maskedPaths"] = s.linux.masked_paths;
  if (!s.linux.readonly_paths.empty()) l["readonlyPaths"] = s.linux.readonly_paths;
  if (!s.linux.sysctl.empty()) l["sysctl"] = s.linux.sysctl;
  if (!s.linux.mount_label.empty()) l["mountLabel"] = s.linux.mount_label;
  if (const std::optional<Seccomp>& sc = s.linux.seccomp) {
    nlohmann::ordered_json sj = {{"defaultAction", sc->default_action},
                                 {"architectures", sc->architectures}};
    if (sc->default_errno_ret) sj["defaultErrnoRet"] = *sc->default_errno_ret;
    sj["syscalls"] = nlohmann::ordered_json::array();
    for (const SeccompSyscall& sys : sc->syscalls) {
      nlohmann::ordered_json one = {{"names", sys.names}, {"action", sys.action}};
      if (sys.errno_ret) one["errnoRet"] = *sys.errno_ret;
      if (!sys.args.empty()) {
        one["args"] = nlohmann::ordered_json::array();
        for (const SeccompArg& a : sys.args) {
          one["args"].push_back(
              {{"index", a.index}, {"value", a.value}, {"valueTwo", a.value_two}, {"op", a.op}});
        }
      }
      sj["syscalls"].push_back(std::move(one));
    }
    l["seccomp"] = std::move(sj);
  }
  if (!s.annotations.empty()) j["annotations"] = s.annotations;
  return j.dump(indent);
}

absl::StatusOr<Resources> ParseResources(absl::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("resources: not valid JSON");
  Resources r;
  RETURN_IF_ERROR(Get(j, "resources", &r));
  return r;
}

std::string ResourcesToJson(const Resources& r) { return ResourcesJson(r).dump(); }

void Resources::Merge(const Resources& u) {
  if (u.cpu) {
    CpuResources& c = cpu ? *cpu : cpu.emplace();
    if (u.cpu->shares) c.shares = u.cpu->shares;
    if (u.cpu->quota) c.quota = u.cpu->quota;
    if (u.cpu->period) c.period = u.cpu->period;
    if (!u.cpu->cpus.empty()) c.cpus = u.cpu->cpus;
    if (!u.cpu->mems.empty()) c.mems = u.cpu->mems;
  }
  if (u.memory) {
    MemoryResources& m = memory ? *memory : memory.emplace();
    if (u.memory->limit) m.limit = u.memory->limit;
    if (u.memory->reservation) m.reservation = u.memory->reservation;
    if (u.memory->swap) m.swap = u.memory->swap;
  }
  if (u.pids) pids = u.pids;
}

int Resources::Vcpus() const {
  if (!cpu || !cpu->quota || *cpu->quota <= 0 || !cpu->period || *cpu->period == 0) return 0;
  const uint64_t quota = static_cast<uint64_t>(*cpu->quota);
  return static_cast<int>(std::min<uint64_t>((quota + *cpu->period - 1) / *cpu->period, 1 << 16));
}

int64_t Resources::MemoryMib() const {
  if (!memory || !memory->limit || *memory->limit <= 0) return 0;
  return (*memory->limit + (1 << 20) - 1) >> 20;
}

absl::Status Resources::Validate() const {
  if (cpu) {
    if (cpu->quota && *cpu->quota < -1) {
      return absl::InvalidArgumentError(
          absl::StrCat("resources.cpu.quota: ", *cpu->quota, " is neither -1 nor positive"));
    }
    if (cpu->period && (*cpu->period < 1000 || *cpu->period > 1000000)) {
      return absl::InvalidArgumentError(absl::StrCat("resources.cpu.period: ", *cpu->period,
                                                     " is outside 1000..1000000 microseconds"));
    }
    if (cpu->shares && *cpu->shares > 262144) {
      return absl::InvalidArgumentError(
          absl::StrCat("resources.cpu.shares: ", *cpu->shares, " is above 262144"));
    }
  }
  if (memory) {
    for (auto [name, v] :
         {std::pair<const char*, const std::optional<int64_t>*>{"limit", &memory->limit},
          {"reservation", &memory->reservation},
          {"swap", &memory->swap}}) {
      if (*v && **v < -1) {
        return absl::InvalidArgumentError(
            absl::StrCat("resources.memory.", name, ": ", **v, " is neither -1 nor positive"));
      }
    }
    if (memory->limit && memory->swap && *memory->limit > 0 && *memory->swap > 0 &&
        *memory->swap < *memory->limit) {
      return absl::InvalidArgumentError(absl::StrCat("resources.memory.swap: ", *memory->swap,
                                                     " is below the memory limit ", *memory->limit,
                                                     " (swap counts memory plus swap)"));
    }
  }
  return absl::OkStatus();
}

Spec DefaultSpec() {
  Spec s;
  s.oci_version = "1.1.0";
  s.process.terminal = true;
  s.process.args = {"sh"};
  s.process.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   "TERM=xterm"};
  s.process.cwd = "/";
  const std::vector<std::string> caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  s.process.capabilities = Capabilities{
      .bounding = caps, .effective = caps, .inheritable = {}, .permitted = caps, .ambient = {}};
  s.process.rlimits = {{.type = "RLIMIT_NOFILE", .hard = 1024, .soft = 1024}};
  s.process.no_new_privileges = true;
  s.root = {.path = "rootfs", .readonly = true};
  s.hostname = "runvm";
  s.mounts = {
      {"/proc", "proc", "proc", {}},
      {"/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}},
      {"/dev/pts",
       "devpts",
       "devpts",
       {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
      {"/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
      {"/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}},
      {"/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}},
      {"/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}},
  };
  s.linux.namespaces = {{"pid", ""}, {"network", ""}, {"ipc", ""},
                        {"uts", ""}, {"mount", ""},   {"cgroup", ""}};
  s.linux.masked_paths = {"/proc/acpi",        "/proc/asound",        "/proc/kcore",
                          "/proc/keys",        "/proc/latency_stats", "/proc/timer_list",
                          "/proc/timer_stats", "/proc/sched_debug",   "/sys/firmware",
                          "/proc/scsi"};
  s.linux.readonly_paths = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                            "/proc/sysrq-trigger"};
  return s;
}

}  // namespace runvm::oci
