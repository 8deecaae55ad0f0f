#include "runtime/oci/record.h"

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "nlohmann/json.hpp"
#include "persist/fields.h"

namespace runvm {
namespace {

using Json = nlohmann::json;

constexpr char kOciVersion[] = "1.0.2";

constexpr std::pair<ContainerStatus, absl::string_view> kStatusNames[] = {
    {ContainerStatus::kCreating, "creating"},
    {ContainerStatus::kCreated, "created"},
    {ContainerStatus::kRunning, "running"},
    {ContainerStatus::kPaused, "paused"},
    {ContainerStatus::kStopped, "stopped"}};

}  // namespace

absl::string_view StatusName(ContainerStatus status) {
  for (const auto& [s, name] : kStatusNames) {
    if (s == status) return name;
  }
  return "unknown";
}

absl::StatusOr<ContainerStatus> ParseContainerStatus(absl::string_view name) {
  for (const auto& [s, n] : kStatusNames) {
    if (n == name) return s;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("status \"", name, "\" is not creating, created, running, paused or stopped"));
}

Json ContainerToJson(const ContainerRecord& r) {
  Json j = Json::object();
  j["id"] = r.id;
  j["sandbox_id"] = r.sandbox_id;
  j["bundle"] = r.bundle;
  j["rootfs"] = r.rootfs;
  j["created"] = r.created;
  j["status"] = StatusName(r.status);
  j["annotations"] = r.annotations;
  j["shares"] = r.shares;
  j["port_device"] = r.port_device;
  j["shim"] = r.shim ? persist::IdentityToJson(*r.shim) : Json(nullptr);
  j["guest_pid"] = r.guest_pid;
  Json execs = Json::array();
  for (const ExecRecord& e : r.execs) {
    execs.push_back({{"id", e.id},
                     {"port_device", e.port_device},
                     {"shim", e.shim ? persist::IdentityToJson(*e.shim) : Json(nullptr)}});
  }
  j["execs"] = std::move(execs);
  j["resources"] = Json::parse(oci::ResourcesToJson(r.resources));
  j["vm_paused"] = r.vm_paused;
  j["cgroup"] = r.cgroup;
  j["sandbox_cgroup_only"] = r.sandbox_cgroup_only;
  j["host_cgroups"] = r.host_cgroups;
  return j;
}

absl::StatusOr<ContainerRecord> ContainerFromJson(const Json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("container record: not an object");
  const persist::Fields f(j, "container record");
  ContainerRecord r;
  for (auto [field, out] : {std::pair<const char*, std::string*>{"id", &r.id},
                            {"sandbox_id", &r.sandbox_id},
                            {"bundle", &r.bundle},
                            {"rootfs", &r.rootfs},
                            {"created", &r.created},
                            {"port_device", &r.port_device}}) {
    ASSIGN_OR_RETURN(*out, f.String(field));
  }
  ASSIGN_OR_RETURN(const std::string status, f.String("status"));
  absl::StatusOr<ContainerStatus> parsed_status = ParseContainerStatus(status);
  if (!parsed_status.ok()) return Annotate(parsed_status.status(), "container record");
  r.status = *parsed_status;
  ASSIGN_OR_RETURN(r.annotations, f.StringMap("annotations"));
  ASSIGN_OR_RETURN(r.shares, f.Strings("shares"));
  ASSIGN_OR_RETURN(r.shim, f.OptionalIdentity("shim"));
  ASSIGN_OR_RETURN(r.guest_pid, f.Int("guest_pid"));
  auto execs = j.find("execs");
  if (execs != j.end()) {
    if (!execs->is_array()) return f.Missing("execs", "a list");
    for (const Json& e : *execs) {
      if (!e.is_object()) return f.Missing("execs[]", "an object");
      const persist::Fields ef(e, "container record: execs[]");
      ExecRecord x;
      ASSIGN_OR_RETURN(x.id, ef.String("id"));
      ASSIGN_OR_RETURN(x.port_device, ef.String("port_device"));
      ASSIGN_OR_RETURN(x.shim, ef.OptionalIdentity("shim"));
      r.execs.push_back(std::move(x));
    }
  }
  // Records written before pods (issue 8) have neither.
  if (auto res = j.find("resources"); res != j.end()) {
    absl::StatusOr<oci::Resources> parsed = oci::ParseResources(res->dump());
    if (!parsed.ok()) return Annotate(parsed.status(), "container record");
    r.resources = *std::move(parsed);
  }
  for (auto [field, out] : {std::pair<const char*, bool*>{"vm_paused", &r.vm_paused},
                            {"sandbox_cgroup_only", &r.sandbox_cgroup_only}}) {
    if (j.contains(field)) {
      ASSIGN_OR_RETURN(*out, f.Bool(field));
    }
  }
  if (j.contains("cgroup")) {
    ASSIGN_OR_RETURN(r.cgroup, f.String("cgroup"));
  }
  if (j.contains("host_cgroups")) {
    ASSIGN_OR_RETURN(r.host_cgroups, f.Strings("host_cgroups"));
  }
  return r;
}

std::string OciStateJson(const OciState& s) { return OciStateToJson(s).dump(2); }

nlohmann::ordered_json OciStateToJson(const OciState& s) {
  nlohmann::ordered_json j;
  j["ociVersion"] = kOciVersion;
  j["id"] = s.id;
  j["pid"] = s.pid;
  j["status"] = StatusName(s.status);
  j["bundle"] = s.bundle;
  j["rootfs"] = s.rootfs;
  j["created"] = s.created;
  j["owner"] = s.owner;
  j["annotations"] = s.annotations;
  return j;
}

}  // namespace runvm
