// libnl-route-3, owned: a NETLINK_ROUTE socket, caches and objects released on scope exit, and
// libnl's error codes turned into statuses that name what was being done. Private to network/.
#ifndef RUNVM_NETWORK_NETLINK_H_
#define RUNVM_NETWORK_NETLINK_H_

#include <netlink/cache.h>
#include <netlink/netlink.h>
#include <netlink/object.h>
#include <netlink/route/action.h>
#include <netlink/route/addr.h>
#include <netlink/route/classifier.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/route.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace runvm::network::nl {

struct SocketFree {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct CacheFree {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
struct ObjectPut {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
  void operator()(rtnl_qdisc* q) const { rtnl_qdisc_put(q); }
  void operator()(rtnl_cls* c) const { rtnl_cls_put(c); }
  void operator()(rtnl_act* a) const { rtnl_act_put(a); }
};
using Socket = std::unique_ptr<nl_sock, SocketFree>;
using Cache = std::unique_ptr<nl_cache, CacheFree>;
using Link = std::unique_ptr<rtnl_link, ObjectPut>;
using Qdisc = std::unique_ptr<rtnl_qdisc, ObjectPut>;
using Classifier = std::unique_ptr<rtnl_cls, ObjectPut>;
using Action = std::unique_ptr<rtnl_act, ObjectPut>;

// "<what>: <libnl's message>"; libnl's codes are negative.
absl::Status Error(int err, const std::string& what);

// A NETLINK_ROUTE socket in the calling thread's network namespace.
absl::StatusOr<Socket> Connect();

// "10.0.0.2/24", "2001:db8::2/64": the address and its prefix length, always both.
std::string AddressWithPrefix(nl_addr* addr);
// The address alone, without a prefix length.
std::string AddressOnly(nl_addr* addr);

}  // namespace runvm::network::nl

#endif  // RUNVM_NETWORK_NETLINK_H_
