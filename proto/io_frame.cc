#include "proto/io_frame.h"

#include "absl/strings/str_cat.h"

namespace runvm::io_frame {
namespace {

void PutU32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

uint32_t GetU32(const char* p) {
  auto b = [&](int i) { return static_cast<uint32_t>(static_cast<unsigned char>(p[i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

}  // namespace

std::string Encode(Kind kind, absl::string_view data) {
  std::string out;
  out.reserve(kHeaderBytes + data.size());
  out.push_back(static_cast<char>(kind));
  PutU32(out, static_cast<uint32_t>(data.size()));
  out.append(data.data(), data.size());
  return out;
}

std::string EncodeExit(int status) {
  std::string v;
  PutU32(v, static_cast<uint32_t>(status));
  return Encode(kExit, v);
}

std::string EncodeResize(uint16_t rows, uint16_t columns) {
  std::string v;
  PutU32(v, static_cast<uint32_t>(rows) << 16 | columns);
  return Encode(kResize, v);
}

std::string EncodeSignal(int signal) {
  std::string v;
  PutU32(v, static_cast<uint32_t>(signal));
  return Encode(kSignal, v);
}

absl::StatusOr<WindowSize> WindowSizeOf(const Frame& frame) {
  if (frame.kind != kResize || frame.data.size() != 4) {
    return absl::InvalidArgumentError("io frame: not a resize frame of 4 bytes");
  }
  const uint32_t v = GetU32(frame.data.data());
  return WindowSize{static_cast<uint16_t>(v >> 16), static_cast<uint16_t>(v & 0xffff)};
}

absl::StatusOr<int> ExitStatusOf(const Frame& frame) {
  if (frame.kind != kExit || frame.data.size() != 4) {
    return absl::InvalidArgumentError("io frame: not an exit frame of 4 bytes");
  }
  return static_cast<int>(GetU32(frame.data.data()));
}

absl::StatusOr<int> SignalOf(const Frame& frame) {
  if (frame.kind != kSignal || frame.data.size() != 4) {
    return absl::InvalidArgumentError("io frame: not a signal frame of 4 bytes");
  }
  const uint32_t v = GetU32(frame.data.data());
  if (v < 1 || v > 64) {
    return absl::InvalidArgumentError(absl::StrCat("io frame: signal ", v, " is not 1 to 64"));
  }
  return static_cast<int>(v);
}

absl::StatusOr<std::optional<Frame>> Reader::Next() {
  if (buf_.size() - pos_ < kHeaderBytes) return std::nullopt;
  const char* p = buf_.data() + pos_;
  const uint8_t kind = static_cast<uint8_t>(p[0]);
  const uint32_t n = GetU32(p + 1);
  if (kind > kSignal) {
    return absl::InvalidArgumentError(absl::StrCat("io frame: unknown kind ", kind));
  }
  if (n > kMaxData) {
    return absl::InvalidArgumentError(absl::StrCat("io frame: ", n, " bytes is over the limit"));
  }
  if (buf_.size() - pos_ - kHeaderBytes < n) return std::nullopt;
  Frame f{.kind = static_cast<Kind>(kind), .data = buf_.substr(pos_ + kHeaderBytes, n)};
  pos_ += kHeaderBytes + n;
  if (pos_ > 65536 && pos_ * 2 > buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return std::optional<Frame>(std::move(f));
}

}  // namespace runvm::io_frame
