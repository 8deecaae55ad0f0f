#include "base/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/fd.h"
#include "nlohmann/json.hpp"

namespace runvm {
namespace {

struct Sink {
  int fd = STDERR_FILENO;
  LogFormat format = LogFormat::kText;
  bool debug = false;
};
Sink g_sink;

absl::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "error";
}

// logrus quotes a text value when it holds anything but plain word characters.
std::string QuoteText(absl::string_view s) {
  return nlohmann::json(std::string(s))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void WriteLine(int fd, const std::string& line) {
  absl::string_view rest = line;
  while (!rest.empty()) {
    ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // Nowhere left to report a failing log sink.
    rest.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log format \"", name, "\": allowed are text and json"));
}

absl::Status InitLogging(const LogOptions& options) {
  g_sink.format = options.format;
  g_sink.debug = options.debug;
  if (options.file.empty()) return absl::OkStatus();
  absl::StatusOr<Fd> fd = OpenFile(options.file, O_WRONLY | O_APPEND | O_CREAT, 0600);
  if (!fd.ok()) {
    g_sink.format = LogFormat::kText;
    return fd.status();
  }
  g_sink.fd = fd->release();  // Lives until exit.
  return absl::OkStatus();
}

std::string FormatLogLine(LogFormat format, LogLevel level, absl::string_view msg,
                          absl::string_view rfc3339_time) {
  if (format == LogFormat::kJson) {
    nlohmann::ordered_json j;
    j["level"] = LevelName(level);
    j["msg"] = std::string(msg);
    j["time"] = std::string(rfc3339_time);
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  return absl::StrCat("time=\"", rfc3339_time, "\" level=", LevelName(level),
                      " msg=", QuoteText(msg), "\n");
}

void Log(LogLevel level, absl::string_view msg) {
  if (level == LogLevel::kDebug && !g_sink.debug) return;
  std::string now = absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone());
  WriteLine(g_sink.fd, FormatLogLine(g_sink.format, level, msg, now));
}

void LogFatal(absl::string_view msg) {
  if (g_sink.fd != STDERR_FILENO) Log(LogLevel::kError, msg);
  WriteLine(STDERR_FILENO, absl::StrCat(msg, "\n"));
}

}  // namespace runvm
