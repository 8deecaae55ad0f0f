#include "persist/store.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/status.h"

namespace runvm::persist {
namespace {

absl::Status MakeParents(const std::string& path) {
  std::string dir = path.substr(0, path.rfind('/'));
  return MakeDirectories(dir, 0700);
}

}  // namespace

absl::Status Store::Save(const std::string& key, const std::string& format, int version,
                         const Json& data) const {
  std::string path = PathOf(key);
  RETURN_IF_ERROR(MakeParents(path));
  // The envelope by hand, so that `data` is not copied into it: format and version first (an
  // operator reads them before anything else), then data, indented one level.
  const std::string body = data.dump(2, ' ', false, Json::error_handler_t::replace);
  std::string text = absl::StrCat("{\n  \"format\": ", Json(format).dump(),
                                  ",\n  \"version\": ", version, ",\n  \"data\": ");
  text.reserve(text.size() + body.size() + body.size() / 8 + 4);
  for (char c : body) {
    text.push_back(c);
    if (c == '\n') text.append("  ");
  }
  text.append("\n}\n");
  return Annotate(WriteFileAtomic(path, text, 0600), absl::StrCat("save ", format, " record"));
}

absl::StatusOr<Json> Store::Load(const std::string& key, const std::string& format, int version,
                                 const Migration& migrate) const {
  std::string path = PathOf(key);
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();

  auto quarantine = [&](absl::string_view why) -> absl::Status {
    std::string aside = absl::StrCat(path, ".corrupt-", absl::ToUnixSeconds(absl::Now()));
    if (::rename(path.c_str(), aside.c_str()) != 0) {
      return absl::DataLossError(
          absl::StrCat(format, " record ", path, " is unreadable (", why,
                       ") and could not be moved aside: ", std::strerror(errno)));
    }
    return absl::DataLossError(absl::StrCat(format, " record ", path, " is unreadable (", why,
                                            "); moved aside to ", aside));
  };

  if (text->empty()) return quarantine("empty file");
  Json record = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (record.is_discarded()) return quarantine("not valid JSON; truncated?");
  if (!record.is_object() || !record.contains("format") || !record["format"].is_string() ||
      !record.contains("version") || !record["version"].is_number_integer() ||
      !record.contains("data")) {
    return quarantine("not a runvm record: format, version and data are needed");
  }
  if (record["format"] != format) {
    return quarantine(absl::StrCat("format \"", record["format"].get<std::string>(),
                                   "\", expected \"", format, "\""));
  }
  int found = record["version"].get<int>();
  if (found > version) {
    return absl::FailedPreconditionError(absl::StrCat(
        format, " record ", path, " has version ", found, ", but this runvm reads versions up to ",
        version, ": it was written by a newer runvm; left as it is"));
  }
  Json data = std::move(record["data"]);
  if (found < version) {
    if (!migrate) {
      return absl::FailedPreconditionError(absl::StrCat(format, " record ", path, " has version ",
                                                        found, " and no migration to ", version,
                                                        " exists"));
    }
    absl::StatusOr<Json> migrated = migrate(found, std::move(data));
    if (!migrated.ok()) {
      return Annotate(migrated.status(),
                      absl::StrCat("migrate ", path, " from version ", found, " to ", version));
    }
    return migrated;
  }
  return data;
}

absl::Status Store::Remove(const std::string& key) const {
  std::string path = PathOf(key);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError("remove " + path);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> Store::List(const std::string& key) const {
  std::string dir = PathOf(key);
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return out;
    return ErrnoError("list " + dir);
  }
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || absl::StrContains(name, ".tmp.")) continue;
    out.push_back(name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace runvm::persist
