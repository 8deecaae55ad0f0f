#include "network/netlink.h"

#include <arpa/inet.h>
#include <netlink/errno.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"

namespace runvm::network::nl {

absl::Status Error(int err, const std::string& what) {
  const std::string message = absl::StrCat(what, ": ", nl_geterror(err));
  switch (err < 0 ? -err : err) {
    case NLE_OBJ_NOTFOUND:
    case NLE_NODEV:
      return absl::NotFoundError(message);
    case NLE_EXIST:
      return absl::AlreadyExistsError(message);
    case NLE_INVAL:
    case NLE_RANGE:
      return absl::InvalidArgumentError(message);
    case NLE_PERM:
    case NLE_NOACCESS:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::StatusOr<Socket> Connect() {
  Socket sock(nl_socket_alloc());
  if (!sock) return absl::ResourceExhaustedError("netlink: cannot allocate a socket");
  if (int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) {
    return Error(err, "netlink: connect");
  }
  return sock;
}

std::string AddressOnly(nl_addr* addr) {
  char text[INET6_ADDRSTRLEN] = {};
  const int family = nl_addr_get_family(addr);
  if ((family != AF_INET && family != AF_INET6) ||
      !inet_ntop(family, nl_addr_get_binary_addr(addr), text, sizeof text)) {
    char fallback[128];
    return nl_addr2str(addr, fallback, sizeof fallback);
  }
  return text;
}

std::string AddressWithPrefix(nl_addr* addr) {
  return absl::StrCat(AddressOnly(addr), "/", nl_addr_get_prefixlen(addr));
}

}  // namespace runvm::network::nl
