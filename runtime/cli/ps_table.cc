#include "runtime/cli/ps_table.h"

#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace runvm {
namespace {

using agent_proto::ProcessEntry;

struct Column {
  const char* header;
  int width;  // negative: left-aligned
  std::string (*value)(const ProcessEntry&, absl::Time now);
};

std::string User(const ProcessEntry& p, absl::Time) {
  return p.uid == 0 ? "root" : absl::StrCat(p.uid);
}
std::string Pid(const ProcessEntry& p, absl::Time) { return absl::StrCat(p.pid); }
std::string Ppid(const ProcessEntry& p, absl::Time) { return absl::StrCat(p.ppid); }
// procps' C: CPU time over the time since the process started, in percent.
std::string Cpu(const ProcessEntry& p, absl::Time now) {
  const int64_t elapsed = absl::ToUnixSeconds(now) - p.start_unix;
  return absl::StrCat(elapsed > 0 ? std::min<int64_t>(p.cpu_seconds * 100 / elapsed, 99) : 0);
}
// HH:MM for a process started today, "MonDD" for an older one (procps' STIME).
std::string Stime(const ProcessEntry& p, absl::Time now) {
  const absl::Time start = absl::FromUnixSeconds(p.start_unix);
  const absl::TimeZone utc = absl::UTCTimeZone();
  const bool today = absl::FormatTime("%Y%m%d", start, utc) == absl::FormatTime("%Y%m%d", now, utc);
  return absl::FormatTime(today ? "%H:%M" : "%b%d", start, utc);
}
std::string Tty(const ProcessEntry& p, absl::Time) { return p.tty.empty() ? "?" : p.tty; }
std::string Time(const ProcessEntry& p, absl::Time) {
  return absl::StrFormat("%02d:%02d:%02d", p.cpu_seconds / 3600, p.cpu_seconds / 60 % 60,
                         p.cpu_seconds % 60);
}
std::string Cmd(const ProcessEntry& p, absl::Time) { return p.command; }
std::string Comm(const ProcessEntry& p, absl::Time) {
  std::string first = p.command.substr(0, p.command.find(' '));
  return first.substr(first.rfind('/') + 1);
}

const std::map<std::string, Column>& Columns() {
  static const auto* columns = new std::map<std::string, Column>{
      {"uid", {"UID", -8, User}},    {"user", {"USER", -8, User}},  {"pid", {"PID", 7, Pid}},
      {"ppid", {"PPID", 7, Ppid}},   {"c", {"C", 2, Cpu}},          {"stime", {"STIME", 5, Stime}},
      {"tty", {"TTY", -8, Tty}},     {"time", {"TIME", 8, Time}},   {"cmd", {"CMD", 0, Cmd}},
      {"args", {"COMMAND", 0, Cmd}}, {"comm", {"COMMAND", 0, Comm}}};
  return *columns;
}

}  // namespace

absl::StatusOr<std::string> RenderPs(const std::vector<ProcessEntry>& processes,
                                     const std::vector<std::string>& ps_options, absl::Time now) {
  std::vector<std::string> fields = {"uid", "pid", "ppid", "c", "stime", "tty", "time", "cmd"};
  bool custom = false;
  for (size_t i = 0; i < ps_options.size(); ++i) {
    std::string opt = ps_options[i];
    std::string list;
    if (opt == "-o" || opt == "--format") {
      if (i + 1 == ps_options.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("ps option ", opt, ": a field list is missing"));
      }
      list = ps_options[++i];
    } else if (absl::StartsWith(opt, "-o")) {
      list = opt.substr(2);
    } else if (absl::StartsWith(opt, "-") && opt.size() > 1 &&
               opt.find_first_not_of("eAafx", 1) == std::string::npos) {
      continue;  // selections: the container's processes are all listed
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "ps option \"", opt,
          "\" is not supported: the guest has no procps; runvm takes -e, -A, -a, -x, -f and "
          "-o FIELDS (uid, user, pid, ppid, c, stime, tty, time, cmd, args, comm)"));
    }
    if (!custom) fields.clear();
    custom = true;
    for (absl::string_view f : absl::StrSplit(list, absl::ByAnyChar(", "), absl::SkipEmpty())) {
      if (Columns().count(std::string(f)) == 0) {
        return absl::InvalidArgumentError(absl::StrCat("ps -o: unknown field \"", f, "\""));
      }
      fields.emplace_back(f);
    }
  }
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header;
  for (const std::string& f : fields) header.push_back(Columns().at(f).header);
  rows.push_back(header);
  for (const ProcessEntry& p : processes) {
    std::vector<std::string> row;
    for (const std::string& f : fields) row.push_back(Columns().at(f).value(p, now));
    rows.push_back(row);
  }
  std::string out;
  for (const std::vector<std::string>& row : rows) {
    std::string line;
    for (size_t i = 0; i < fields.size(); ++i) {
      const int width = Columns().at(fields[i]).width;
      if (i > 0) line += ' ';
      const std::string& v = row[i];
      const size_t pad = static_cast<size_t>(std::abs(width)) > v.size()
                             ? static_cast<size_t>(std::abs(width)) - v.size()
                             : 0;
      if (width < 0 && i + 1 < fields.size()) {
        line += v + std::string(pad, ' ');
      } else if (width > 0) {
        line += std::string(pad, ' ') + v;
      } else {
        line += v;
      }
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace runvm
