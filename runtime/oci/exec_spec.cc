#include "runtime/oci/exec_spec.h"

#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/status.h"
#include "nlohmann/json.hpp"
#include "proto/oci_spec.h"

namespace runvm {

using Json = nlohmann::json;

absl::StatusOr<std::string> ExecSpec(const std::string& bundle, const ExecRequest& req) {
  const std::string path = bundle + "/config.json";
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ExecSpecFrom(text, path, req);
}

absl::StatusOr<std::string> ExecSpecFrom(const std::string& config_json, const std::string& path,
                                         const ExecRequest& req) {
  Json spec = Json::parse(config_json, nullptr, /*allow_exceptions=*/false);
  if (!spec.is_object()) return absl::InvalidArgumentError(path + ": not a JSON object");
  if (!req.process_json.empty()) {
    Json process = Json::parse(req.process_json, nullptr, /*allow_exceptions=*/false);
    if (!process.is_object()) {
      return absl::InvalidArgumentError("--process: not a JSON object");
    }
    spec["process"] = std::move(process);
  } else {
    Json& p = spec["process"];
    if (req.args.empty()) return absl::InvalidArgumentError("exec: no command given");
    p["args"] = req.args;
    p["terminal"] = req.tty;
    if (!req.cwd.empty()) p["cwd"] = req.cwd;
    for (const std::string& e : req.env) p["env"].push_back(e);
    if (!req.user.empty()) {
      std::vector<std::string> ids = absl::StrSplit(req.user, ':');
      uint32_t uid = 0, gid = 0;
      if (ids.size() > 2 || !absl::SimpleAtoi(ids[0], &uid) ||
          (ids.size() == 2 && !absl::SimpleAtoi(ids[1], &gid))) {
        return absl::InvalidArgumentError(
            absl::StrCat("--user \"", req.user, "\": numeric uid[:gid] only"));
      }
      p["user"]["uid"] = uid;
      p["user"]["gid"] = gid;
    }
    for (const std::string& g : req.additional_gids) {
      uint32_t gid = 0;
      if (!absl::SimpleAtoi(g, &gid)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--additional-gids \"", g, "\": not a numeric gid"));
      }
      p["user"]["additionalGids"].push_back(gid);
    }
    for (const std::string& cap : req.caps) {
      for (const char* set : {"bounding", "effective", "permitted"}) {
        p["capabilities"][set].push_back(cap);
      }
    }
    if (req.no_new_privs) p["noNewPrivileges"] = true;
  }
  const std::string out = spec.dump();
  absl::StatusOr<oci::Spec> parsed = oci::ParseSpec(out);
  if (!parsed.ok()) return Annotate(parsed.status(), "exec: the process");
  if (absl::Status st = parsed->Validate(); !st.ok()) return Annotate(st, "exec: the process");
  if (parsed->process.terminal != !req.console_socket.empty()) {
    return absl::InvalidArgumentError(
        parsed->process.terminal
            ? "cannot allocate tty if runc will detach without setting console socket"
            : "cannot use console socket if runc will not detach or allocate tty");
  }
  return out;
}

}  // namespace runvm
