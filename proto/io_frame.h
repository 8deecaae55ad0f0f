// The stdio of one container process travels on its own port (a hot-plugged virtio-serial port
// in the guest, the shim's socket on the host), in frames:
//
//   frame = kind (u8) | length (u32, big-endian) | bytes
//
//   kStdin       host -> guest   bytes for the process's stdin
//   kStdinClosed host -> guest   the host's stdin ended (no bytes)
//   kStdout      guest -> host   bytes the process wrote to stdout (or to its terminal)
//   kStderr      guest -> host   bytes the process wrote to stderr
//   kExit        guest -> host   the process ended and its output is all sent: 4 bytes, the exit
//                                status in shell convention (128 + signal when killed)
//   kResize      host -> guest   the terminal's new size: 4 bytes, rows (u16) and columns (u16)
//   kSignal      host -> guest   a signal the shim received, for the process: 4 bytes, its number
//
// Only one shim ever talks on a process's port, so unlike the control channel there is nothing
// to resynchronise: a malformed frame is an error that ends the stream.
#ifndef RUNVM_PROTO_IO_FRAME_H_
#define RUNVM_PROTO_IO_FRAME_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace runvm::io_frame {

enum Kind : uint8_t {
  kStdin = 0,
  kStdinClosed = 1,
  kStdout = 2,
  kStderr = 3,
  kExit = 4,
  kResize = 5,
  kSignal = 6,
};

inline constexpr size_t kHeaderBytes = 5;
inline constexpr uint32_t kMaxData = 1 << 20;

struct Frame {
  Kind kind = kStdout;
  std::string data;
};

std::string Encode(Kind kind, absl::string_view data = {});
std::string EncodeExit(int status);
std::string EncodeResize(uint16_t rows, uint16_t columns);
std::string EncodeSignal(int signal);
// The exit status of a kExit frame; InvalidArgument unless it holds exactly 4 bytes.
absl::StatusOr<int> ExitStatusOf(const Frame& frame);

struct WindowSize {
  uint16_t rows = 0;
  uint16_t columns = 0;
};
// The size a kResize frame carries; InvalidArgument unless it holds exactly 4 bytes.
absl::StatusOr<WindowSize> WindowSizeOf(const Frame& frame);
// The signal a kSignal frame carries; InvalidArgument unless it holds exactly 4 bytes naming a
// signal between 1 and 64.
absl::StatusOr<int> SignalOf(const Frame& frame);

class Reader {
 public:
  void Feed(absl::string_view bytes) { buf_.append(bytes.data(), bytes.size()); }
  // The next frame; nullopt until one is complete; InvalidArgument for an unknown kind or a
  // length over kMaxData (the stream is then unusable).
  absl::StatusOr<std::optional<Frame>> Next();

 private:
  std::string buf_;
  size_t pos_ = 0;
};

}  // namespace runvm::io_frame

#endif  // RUNVM_PROTO_IO_FRAME_H_
