#include "devices/tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/netns.h"
#include "base/status.h"

namespace runvm::devices {
namespace {

constexpr int kMaxQueues = 256;

// Runs in the namespace (InNetworkNamespace).
absl::StatusOr<Tap> CreateTapHere(const std::string& netns_path, const std::string& name,
                                  int queues) {
  const std::string what = absl::StrCat("tap ", name);
  Fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return ErrnoError(what + ": socket");
  struct ifreq probe {};
  std::memcpy(probe.ifr_name, name.data(), name.size());
  if (::ioctl(sock.get(), SIOCGIFINDEX, &probe) == 0) {
    return absl::AlreadyExistsError(absl::StrCat(what,
                                                 ": a network device of that name already exists",
                                                 netns_path.empty() ? "" : " in " + netns_path));
  }
  Tap tap{.name = name};
  for (int q = 0; q < queues; ++q) {
    ASSIGN_OR_RETURN(Fd fd, OpenFile("/dev/net/tun", O_RDWR));
    struct ifreq ifr {};
    std::memcpy(ifr.ifr_name, name.data(), name.size());
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE;
    if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) {
      return ErrnoError(absl::StrCat(what, ": TUNSETIFF (queue ", q, ")"));
    }
    tap.queues.push_back(std::move(fd));
  }
  struct ifreq up {};
  std::memcpy(up.ifr_name, name.data(), name.size());
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &up) != 0) return ErrnoError(what + ": SIOCGIFFLAGS");
  up.ifr_flags |= IFF_UP;
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &up) != 0) return ErrnoError(what + ": set up");
  if (::access("/dev/vhost-net", F_OK) == 0) {
    for (int q = 0; q < queues; ++q) {
      ASSIGN_OR_RETURN(Fd fd, OpenFile("/dev/vhost-net", O_RDWR));
      tap.vhost.push_back(std::move(fd));
    }
  }
  return tap;
}

}  // namespace

absl::StatusOr<Tap> CreateTap(const std::string& netns_path, const std::string& name, int queues) {
  if (name.empty() || name.size() >= IFNAMSIZ || name.find_first_of("/: \t\n") != name.npos ||
      name == "." || name == "..") {
    return absl::InvalidArgumentError(absl::StrCat("tap name \"", name, "\": must be 1 to ",
                                                   IFNAMSIZ - 1,
                                                   " bytes without '/', ':' or space"));
  }
  if (queues < 1 || queues > kMaxQueues) {
    return absl::InvalidArgumentError(
        absl::StrCat("tap ", name, ": ", queues, " queues (allowed: 1 to ", kMaxQueues, ")"));
  }
  absl::StatusOr<Tap> result = absl::InternalError("tap thread did not run");
  absl::Status entered = InNetworkNamespace(netns_path, [&] {
    result = CreateTapHere(netns_path, name, queues);
    return absl::OkStatus();
  });
  if (!entered.ok()) return Annotate(entered, "tap " + name);
  return result;
}

absl::StatusOr<std::array<uint8_t, 6>> ParseMac(const std::string& text) {
  std::array<uint8_t, 6> mac{};
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  bool ok = parts.size() == 6;
  for (size_t i = 0; ok && i < parts.size(); ++i) {
    int byte = 0;
    ok = parts[i].size() == 2 && absl::SimpleHexAtoi(parts[i], &byte);
    mac[i] = static_cast<uint8_t>(byte);
  }
  if (!ok)
    return absl::InvalidArgumentError(
        absl::StrCat("MAC address \"", text, "\": not six hex pairs"));
  if (mac[0] & 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("MAC address \"", text, "\": a multicast address cannot name a NIC"));
  }
  return mac;
}

}  // namespace runvm::devices
