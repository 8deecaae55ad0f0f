// Process-wide logging that follows runc's contract, so engines can read our log as runc's:
//
//   --log FILE          append to FILE (created 0600 when missing); otherwise stderr
//   --log-format json   one object per line: {"level":"error","msg":"...","time":"RFC3339"}
//   --log-format text   logrus text: time="..." level=error msg="..."
//   --debug             debug messages are written too
//
// An error reported with LogFatal() is logged and also printed plainly on stderr, as runc does,
// so both a log-reading engine (containerd) and a stderr-reading one (podman) see it.
//
// Threading: InitLogging() runs once in main before other threads exist; the Log* functions are
// safe to call from any thread afterwards (each line is one write(2) on an O_APPEND fd).
#ifndef RUNVM_BASE_LOG_H_
#define RUNVM_BASE_LOG_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace runvm {

enum class LogLevel { kDebug, kInfo, kWarning, kError };
enum class LogFormat { kText, kJson };

// Parses "text" or "json" (runc's --log-format values).
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name);

struct LogOptions {
  std::string file;  // empty: stderr
  LogFormat format = LogFormat::kText;
  bool debug = false;
};

// Opens the sink. On error logging stays on stderr (text) and the error is returned.
absl::Status InitLogging(const LogOptions& options);

void Log(LogLevel level, absl::string_view msg);
inline void LogDebug(absl::string_view msg) { Log(LogLevel::kDebug, msg); }
inline void LogInfo(absl::string_view msg) { Log(LogLevel::kInfo, msg); }
inline void LogWarning(absl::string_view msg) { Log(LogLevel::kWarning, msg); }
inline void LogError(absl::string_view msg) { Log(LogLevel::kError, msg); }

// Logs `msg` at error level and prints it on stderr (once, when the log already is stderr).
void LogFatal(absl::string_view msg);

// Renders one log line (with its trailing newline); exposed for tests.
std::string FormatLogLine(LogFormat format, LogLevel level, absl::string_view msg,
                          absl::string_view rfc3339_time);

}  // namespace runvm

#endif  // RUNVM_BASE_LOG_H_
