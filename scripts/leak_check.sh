#!/usr/bin/env bash
# Snapshots what tests may leave behind (qemu, virtiofsd and shim processes, mounts, tap
# devices and ingress qdiscs also inside named network namespaces, the tests' namespaces, runvm
# state and test directories) and compares two snapshots.
#   scripts/leak_check.sh snapshot FILE
#   scripts/leak_check.sh compare FILE   (fails, listing them, when something new is left)
set -euo pipefail

snapshot() {
  {
    pgrep -a -f '(^|/)(qemu-system-x86_64|virtiofsd)( |$)' | sed 's/^/process /' || true
    pgrep -a -f 'runvm .*shim' | sed 's/^/process /' || true
    pgrep -a -x runvm-watch | sed 's/^/process /' || true
    # the engine tests' daemons and their shims (containerd, containerd-shim-runc-v2, conmon)
    pgrep -a -f '(containerd|conmon).*runvm-test' | sed 's/^/process /' || true
    awk '{print "mount " $2}' /proc/self/mounts | grep -E 'runvm' || true
    ip -o link show type tun 2>/dev/null | awk -F': ' '{print "tap " $2}' || true
    ls -d /run/runvm/* /run/runvm/.vm /run/containerd/runc/*/* /run/containerd/runc/*/.vm \
      /tmp/runvm-test.* 2>/dev/null | sed 's/^/path /' || true
    ip netns list 2>/dev/null | awk '/^runvm-/{print "netns " $1}' || true
    # taps and ingress filters inside named namespaces (a pod network's, made by runvm)
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
      ip -n "$ns" -o link show type tun 2>/dev/null | awk -F': ' -v ns="$ns" '{print "tap " ns "/" $2}'
      ip netns exec "$ns" tc qdisc show ingress 2>/dev/null | awk -v ns="$ns" '{print "ingress " ns "/" $5}'
    done
  } | sort
}

case "${1:-}" in
  snapshot) snapshot > "$2" ;;
  compare)
    left=$(comm -13 "$2" <(snapshot))
    if [ -n "$left" ]; then
      echo "leak check: the tests left these behind:"
      echo "$left" | sed 's/^/  /'
      exit 1
    fi
    echo "leak check: nothing left behind"
    ;;
  *) echo "usage: $0 snapshot|compare FILE" >&2; exit 2 ;;
esac
