#include "persist/lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/status.h"

namespace runvm::persist {

absl::StatusOr<Lock> Lock::Acquire(const std::string& path, Mode mode, absl::Duration wait,
                                   absl::string_view what, absl::string_view purpose) {
  const int op = (mode == kExclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
  absl::Time deadline = absl::Now() + wait;
  ASSIGN_OR_RETURN(Fd fd, OpenFile(path, O_RDWR | O_CREAT, 0600));
  for (;;) {
    if (::flock(fd.get(), op) == 0) {
      // A holder that deleted the sandbox removed the lock file with it: the lock just taken is on
      // a file nobody else will ever open again. Take the one now at `path` instead.
      struct stat held, current;
      if (::fstat(fd.get(), &held) != 0) return ErrnoError("stat lock " + path);
      const int r = ::stat(path.c_str(), &current);
      if (r == 0 && current.st_ino == held.st_ino && current.st_dev == held.st_dev) break;
      if (r != 0 && errno != ENOENT) return ErrnoError("stat lock " + path);
      ASSIGN_OR_RETURN(fd, OpenFile(path, O_RDWR | O_CREAT, 0600));
      continue;
    }
    if (errno != EWOULDBLOCK && errno != EINTR) return ErrnoError("lock " + path);
    if (absl::Now() >= deadline) {
      absl::StatusOr<std::string> holder = ReadFile(path, 4096);
      std::string who(holder.ok() ? absl::StripAsciiWhitespace(*holder) : "");
      return absl::UnavailableError(
          absl::StrCat(what, " is busy: ", who.empty() ? "held by another runvm" : who, " (waited ",
                       absl::FormatDuration(wait), ")"));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  if (mode == kExclusive) {
    // Who holds it, for the next waiter's message. Best effort: the lock is what counts.
    std::string text = absl::StrCat(
        purpose, " by pid ", ::getpid(), " since ",
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone()), "\n");
    if (::ftruncate(fd.get(), 0) == 0) {
      [[maybe_unused]] ssize_t n = ::pwrite(fd.get(), text.data(), text.size(), 0);
    }
  }
  return Lock(std::move(fd), mode == kExclusive);
}

Lock::~Lock() {
  // Forget the holder's description so a later waiter does not name a holder that has left.
  if (fd_.valid() && exclusive_) [[maybe_unused]]
    int r = ::ftruncate(fd_.get(), 0);
}

}  // namespace runvm::persist
