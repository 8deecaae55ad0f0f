// Fd: sole owner of a file descriptor.
//
//   ASSIGN_OR_RETURN(Fd fd, OpenFile(path, O_RDONLY));
//   ::read(fd.get(), buf, n);       // borrow
//   int raw = fd.release();         // hand ownership on (e.g. to a child's fd map)
//
// Movable, not copyable; closes on destruction. Not thread-safe: one owner at a time.
#ifndef RUNVM_BASE_FD_H_
#define RUNVM_BASE_FD_H_

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace runvm {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Gives up ownership without closing.
  int release() { return std::exchange(fd_, -1); }
  // Closes the current descriptor (if any) and takes `fd`.
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// open(2) with O_CLOEXEC added; the error names the path.
absl::StatusOr<Fd> OpenFile(const std::string& path, int flags, int mode = 0);

// A pipe whose both ends are close-on-exec.
struct Pipe {
  Fd read;
  Fd write;
};
absl::StatusOr<Pipe> MakePipe();

// Reads `fd` until end of file: DeadlineExceeded when it does not come by `deadline`,
// ResourceExhausted past `max_bytes`.
absl::StatusOr<std::string> ReadToEnd(int fd, size_t max_bytes, absl::Time deadline);

}  // namespace runvm

#endif  // RUNVM_BASE_FD_H_
