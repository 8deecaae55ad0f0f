#include "network/tcfilter.h"

#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/tc_act/tc_mirred.h>
#include <netlink/route/act/mirred.h>
#include <netlink/route/action.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/tc.h>
#include <sched.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "base/netns.h"
#include "base/status.h"
#include "devices/tap.h"
#include "network/netlink.h"

namespace runvm::network {
namespace {

constexpr uint32_t kIngressHandle = TC_HANDLE(0xffff, 0);

using nl::Qdisc;

absl::StatusOr<int> IndexOf(nl_sock* sock, const std::string& name, const std::string& where) {
  rtnl_link* raw = nullptr;
  if (int err = rtnl_link_get_kernel(sock, 0, name.c_str(), &raw); err < 0) {
    return nl::Error(err, absl::StrCat("interface ", name, " in ", where));
  }
  nl::Link link(raw);
  return rtnl_link_get_ifindex(link.get());
}

Qdisc IngressOf(int ifindex) {
  Qdisc q(rtnl_qdisc_alloc());
  rtnl_tc_set_ifindex(TC_CAST(q.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(q.get()), TC_H_INGRESS);
  rtnl_tc_set_handle(TC_CAST(q.get()), kIngressHandle);
  rtnl_tc_set_kind(TC_CAST(q.get()), "ingress");
  return q;
}

// Whether the interface has an ingress qdisc now.
absl::StatusOr<bool> HasIngress(nl_sock* sock, int ifindex, const std::string& what) {
  nl_cache* raw = nullptr;
  if (int err = rtnl_qdisc_alloc_cache(sock, &raw); err < 0) {
    return nl::Error(err, what + ": list qdiscs");
  }
  nl::Cache qdiscs(raw);
  rtnl_qdisc* found = rtnl_qdisc_get_by_parent(qdiscs.get(), ifindex, TC_H_INGRESS);
  if (found == nullptr) return false;
  rtnl_qdisc_put(found);
  return true;
}

absl::Status AddIngress(nl_sock* sock, int ifindex, const std::string& what) {
  Qdisc q = IngressOf(ifindex);
  if (int err = rtnl_qdisc_add(sock, q.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0) {
    return nl::Error(err, what + ": add ingress qdisc");
  }
  return absl::OkStatus();
}

absl::Status DeleteIngress(nl_sock* sock, int ifindex, const std::string& what) {
  Qdisc q = IngressOf(ifindex);
  if (int err = rtnl_qdisc_delete(sock, q.get()); err < 0) {
    return nl::Error(err, what + ": delete ingress qdisc");
  }
  return absl::OkStatus();
}

// tc filter add dev <from> parent ffff: protocol all u32 match u32 0 0
//   action mirred egress redirect dev <to>
absl::Status AddMirred(nl_sock* sock, int from, int to, const std::string& what) {
  nl::Classifier cls(rtnl_cls_alloc());
  rtnl_tc_set_ifindex(TC_CAST(cls.get()), from);
  rtnl_tc_set_parent(TC_CAST(cls.get()), kIngressHandle);
  if (int err = rtnl_tc_set_kind(TC_CAST(cls.get()), "u32"); err < 0) {
    return nl::Error(err, what + ": u32 classifier");
  }
  rtnl_cls_set_protocol(cls.get(), ETH_P_ALL);
  rtnl_cls_set_prio(cls.get(), 1);
  rtnl_u32_set_cls_terminal(cls.get());
  rtnl_u32_add_key_uint32(cls.get(), 0, 0, 0, 0);  // every packet
  nl::Action act(rtnl_act_alloc());
  if (int err = rtnl_tc_set_kind(TC_CAST(act.get()), "mirred"); err < 0) {
    return nl::Error(err, what + ": mirred action");
  }
  rtnl_mirred_set_action(act.get(), TCA_EGRESS_REDIR);
  rtnl_mirred_set_policy(act.get(), TC_ACT_STOLEN);
  rtnl_mirred_set_ifindex(act.get(), to);
  if (int err = rtnl_u32_add_action(cls.get(), act.get()); err < 0) {
    return nl::Error(err, what + ": u32 action");
  }
  if (int err = rtnl_cls_add(sock, cls.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0) {
    return nl::Error(err, what + ": add u32 filter with mirred redirect");
  }
  return absl::OkStatus();
}

absl::Status SetMtu(nl_sock* sock, const std::string& name, int64_t mtu, const std::string& what) {
  rtnl_link* raw = nullptr;
  if (int err = rtnl_link_get_kernel(sock, 0, name.c_str(), &raw); err < 0) {
    return nl::Error(err, what);
  }
  nl::Link link(raw);
  nl::Link change(rtnl_link_alloc());
  rtnl_link_set_mtu(change.get(), static_cast<unsigned>(mtu));
  if (int err = rtnl_link_change(sock, link.get(), change.get(), 0); err < 0) {
    return nl::Error(err, absl::StrCat(what, ": set MTU ", mtu));
  }
  return absl::OkStatus();
}

absl::Status RedirectHere(const std::string& where, const std::string& interface,
                          const std::string& tap, int64_t mtu) {
  const std::string what = absl::StrCat("tcfilter ", interface, " <-> ", tap, " in ", where);
  ASSIGN_OR_RETURN(nl::Socket sock, nl::Connect());
  ASSIGN_OR_RETURN(int from, IndexOf(sock.get(), interface, where));
  ASSIGN_OR_RETURN(int to, IndexOf(sock.get(), tap, where));
  ASSIGN_OR_RETURN(bool taken, HasIngress(sock.get(), from, what));
  if (taken) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, ": ", interface, " already has an ingress qdisc, which is not runvm's to replace"));
  }
  RETURN_IF_ERROR(SetMtu(sock.get(), tap, mtu, "tap " + tap + " in " + where));
  RETURN_IF_ERROR(AddIngress(sock.get(), from, what));
  absl::Status st = AddMirred(sock.get(), from, to, what);
  if (st.ok()) st = AddIngress(sock.get(), to, what);
  if (st.ok()) st = AddMirred(sock.get(), to, from, what);
  if (!st.ok()) {
    (void)DeleteIngress(sock.get(), from, what);
    (void)DeleteIngress(sock.get(), to, what);
  }
  return st;
}

}  // namespace

absl::Status Redirect(const std::string& netns, const std::string& interface,
                      const std::string& tap, int64_t mtu) {
  const std::string where = netns.empty() ? "runvm's network namespace" : netns;
  return InNetworkNamespace(netns, [&] { return RedirectHere(where, interface, tap, mtu); });
}

absl::Status RemoveRedirect(const std::string& netns, uint64_t netns_inode,
                            const std::string& interface) {
  absl::StatusOr<Fd> ns = OpenNetworkNamespace(netns);
  if (absl::IsNotFound(ns.status())) return absl::OkStatus();  // gone, and its devices with it
  RETURN_IF_ERROR(ns.status());
  ASSIGN_OR_RETURN(ino_t inode, NetworkNamespaceInode(ns->get()));
  if (inode != netns_inode) return absl::OkStatus();  // the path names another namespace now
  const std::string what = absl::StrCat("tcfilter on ", interface, " in ", netns);
  return InNetworkNamespace(*ns, netns, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(nl::Socket sock, nl::Connect());
    absl::StatusOr<int> index = IndexOf(sock.get(), interface, netns);
    if (absl::IsNotFound(index.status())) return absl::OkStatus();
    RETURN_IF_ERROR(index.status());
    ASSIGN_OR_RETURN(bool present, HasIngress(sock.get(), *index, what));
    return present ? DeleteIngress(sock.get(), *index, what) : absl::OkStatus();
  });
}

absl::Status ProbeTcFilter() {
  absl::Status result = absl::InternalError("probe thread did not run");
  std::thread worker([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      result = ErrnoError("a scratch network namespace (unshare)");
      return;
    }
    // Threads this one starts (CreateTap's, Redirect's) share its scratch namespace.
    absl::StatusOr<devices::Tap> a = devices::CreateTap("", "probe0_runvm", 2);
    absl::StatusOr<devices::Tap> b = devices::CreateTap("", "probe1_runvm", 2);
    if (!a.ok() || !b.ok()) {
      result = Annotate(!a.ok() ? a.status() : b.status(), "multi-queue tap");
      return;
    }
    result = Redirect("", a->name, b->name, 1400);
  });
  worker.join();
  return result;
}

}  // namespace runvm::network
